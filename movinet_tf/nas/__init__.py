"""Architecture search for MoViNets: the search space, a one-shot supernet, a
REINFORCE controller (TuNAS-style), and compound scaling. See docs/search.md.

Example:
    import numpy as np, movinet_tf
    from movinet_tf import nas
    space = nas.movinet_space()                      # A0-A5 are points of it
    spec = space.decode(space.sample(np.random.default_rng(0)))
    model = movinet_tf.build_model("mine", stream=True,
                                   block_specs=movinet_tf.format_spec(spec))
    macs = nas.spec_macs(spec, [1, 1, 172, 172, 3])  # == count_flops(model, ...)
"""
from movinet_tf.nas.controller import Controller, absolute_reward
from movinet_tf.nas.cost import FlopsCost, TfliteLatency, spec_macs
from movinet_tf.nas.scaling import random_scaling_search, scale_spec, scaled_input
from movinet_tf.nas.space import KERNELS, Decision, SearchSpace, movinet_space, round8
from movinet_tf.nas.supernet import Supernet
from movinet_tf.nas.traced import TracedSupernet
from movinet_tf.nas.tunas import load_spec_yaml, run_search

__all__ = ["KERNELS", "Controller", "Decision", "FlopsCost", "SearchSpace", "Supernet",
           "TfliteLatency", "TracedSupernet", "absolute_reward", "load_spec_yaml", "movinet_space",
           "random_scaling_search", "round8", "run_search", "scale_spec", "scaled_input",
           "spec_macs"]
