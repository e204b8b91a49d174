"""The REINFORCE controller and the absolute reward."""
import numpy as np
import pytest

from movinet_tf.nas.controller import Controller, absolute_reward
from movinet_tf.nas.space import SearchSpace


def _toy_space():
    # Three stem widths to choose from; block 4 may have a second layer or not.
    return SearchSpace(stem_widths=(8, 16, 24), block_widths=((8,), (16,), (16,), (16,), (24,)),
                       max_layers=(1, 1, 1, 1, 2), expand_ratios=("2", "3"), head_widths=(16,),
                       classifier_widths=(16,))


def test_probabilities_move_toward_the_rewarded_choice():
    space = _toy_space()
    controller = Controller(space, learning_rate=0.05)
    assert np.allclose(controller.probabilities()[0], 1 / 3)
    for step in range(150):
        indices = controller.sample((0, step))
        controller.update(indices, 1.0 if space.decode(indices).stem_filters == 16 else 0.0)
    stem = controller.probabilities()[0]
    assert stem[1] > 0.9, stem
    assert controller.most_likely()[0] == 1
    assert controller.entropy() < Controller(space).entropy()


def test_cost_penalty_steers_toward_the_target():
    # Quality is flat, so only |cost/target - 1| matters: the stem width nearest 16 wins.
    space = _toy_space()
    controller = Controller(space, learning_rate=0.05)
    for step in range(150):
        indices = controller.sample((1, step))
        width = space.decode(indices).stem_filters
        controller.update(indices, absolute_reward(0.5, width, 16.0, beta=-1.0))
    assert controller.most_likely()[0] == 1


def test_unused_decisions_are_not_updated():
    space = _toy_space()
    controller = Controller(space, learning_rate=0.1)
    names = [d.name for d in space.decisions()]
    depth, slot = names.index("block4_layers"), names.index("block4_layer1_kernel")
    for step in range(30):
        indices = list(controller.sample((2, step)))
        indices[depth] = 0  # always one layer: slot 1 of block 4 is never used
        controller.update(indices, float(step % 2))
    assert np.allclose(controller.probabilities()[slot], 1 / len(space.kernels))


def test_sampling_is_seeded():
    controller = Controller(_toy_space())
    assert controller.sample((3, 5)) == controller.sample((3, 5))
    draws = {controller.sample((3, s)) for s in range(20)}
    assert len(draws) > 5


def test_absolute_reward():
    assert absolute_reward(0.8, 12.0, 10.0, beta=-0.5) == pytest.approx(0.8 - 0.5 * 0.2)
    assert absolute_reward(0.8, 8.0, 10.0, beta=-0.5) == pytest.approx(0.7)
    assert absolute_reward(0.8, 10.0, 10.0, beta=-0.5) == pytest.approx(0.8)
    with pytest.raises(ValueError, match="beta"):
        absolute_reward(0.8, 10.0, 10.0, beta=0.1)
    with pytest.raises(ValueError, match="target"):
        absolute_reward(0.8, 10.0, 0.0, beta=-0.1)


def _small_space():
    # Few enough architectures (3 * 4**4 * (4 + 16)) to enumerate.
    return SearchSpace(stem_widths=(8, 16, 24), block_widths=((8,), (16,), (16,), (16,), (24,)),
                       max_layers=(1, 1, 1, 1, 2), expand_ratios=("2", "3"),
                       kernels=("1x3x3", "3x3x3"), head_widths=(16,), classifier_widths=(16,))


def _exact_log_probabilities(controller, space):
    """spec text -> exact log p, by enumerating every choice tuple (unused slots marginalised)."""
    import itertools
    from movinet_tf.models import specs as specs_lib
    logs = [np.log(p) for p in controller.probabilities()]
    out = {}
    for indices in itertools.product(*[range(len(d.choices)) for d in space.decisions()]):
        text = specs_lib.format_spec(space.decode(indices))
        if text not in out:
            out[text] = sum(l[i] for l, i, used in zip(logs, indices, space.used_mask(indices))
                            if used)
    return out


def test_likely_architectures_are_the_policy_top_ones():
    from movinet_tf.models import specs as specs_lib
    space = _small_space()
    controller = Controller(space)
    rng = np.random.default_rng(7)
    controller.logits.assign(rng.normal(0.0, 1.5, controller.logits.shape).astype(np.float32))
    exact = _exact_log_probabilities(controller, space)

    def text(indices):
        return specs_lib.format_spec(space.decode(indices))

    likely = controller.likely_architectures(5, (0, 1))
    assert len(likely) == 5
    assert likely[0][0] == controller.most_likely()
    for indices, log_p in likely:
        assert log_p == pytest.approx(exact[text(indices)], abs=1e-9)
    texts = [text(indices) for indices, _ in likely]
    assert len(set(texts)) == 5
    # After the controller's choice: the 4 most likely other architectures, in order.
    others = sorted((lp, t) for t, lp in exact.items() if t != texts[0])[::-1][:4]
    assert texts[1:] == [t for _, t in others]
    # A filter drops architectures but never the controller's choice.
    asked = []

    def stem_24(indices):
        asked.append(indices)
        return space.decode(indices).stem_filters == 24

    wide = controller.likely_architectures(4, (0, 1), keep=stem_24)
    assert wide[0][0] == controller.most_likely()
    assert len(wide) == 4
    assert all(space.decode(indices).stem_filters == 24 for indices, _ in wide[1:])
    # The filter (a cost, maybe a slow one) is asked only down the list as far as needed.
    assert len(asked) < 100, len(asked)  # of about 1500 distinct draws
    with pytest.raises(ValueError, match="count"):
        controller.likely_architectures(0, (0, 1))
