"""movinet_tf: MoViNets for Keras 3 — streaming video recognition.

Public API::

    model = movinet_tf.build_model("a0", stream=True, num_classes=600)
    states = model.init_states([1, 1, 172, 172, 3])
    logits, states = model({**states, "image": frame})
"""
from movinet_tf.models import MODEL_IDS, build_model, format_spec, get_spec, parse_spec
from movinet_tf.models.flops import count_flops
from movinet_tf.models.official_checkpoint import load_official_checkpoint

__version__ = "0.1.0"
__all__ = ["MODEL_IDS", "build_model", "count_flops", "format_spec", "get_spec",
           "load_official_checkpoint", "parse_spec"]
