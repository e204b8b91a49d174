"""Compound scaling of a base architecture to a cost target."""
import pytest

import movinet_tf
from movinet_tf.models import specs as specs_lib
from movinet_tf.nas.cost import spec_macs
from movinet_tf.nas.scaling import random_scaling_search, scale_spec, scaled_input


def test_scale_spec_depth_and_width():
    a0 = movinet_tf.get_spec("a0")
    assert scale_spec(a0, 1.0, 1.0) == a0
    grown = scale_spec(a0, depth=2.0, width=1.5)
    assert [len(b.layers) for b in grown.blocks] == [2, 6, 6, 8, 8]
    assert [b.out_filters for b in grown.blocks] == [16, 48, 88, 88, 160]
    assert grown.head_filters == 720 and grown.classifier_filters == 2048
    # Strides stay where the space puts them: first layer of each block but the 4th.
    for b, block in enumerate(grown.blocks):
        assert [l.spatial_stride for l in block.layers] == \
            [2 if (l == 0 and b != 3) else 1 for l in range(len(block.layers))]
    shrunk = scale_spec(a0, depth=0.5, width=0.5, scale_classifier=True)
    assert [len(b.layers) for b in shrunk.blocks] == [1, 2, 2, 2, 2]
    assert shrunk.classifier_filters == 1024
    # A scaled spec is a valid spec string that builds.
    movinet_tf.build_model("scaled", block_specs=specs_lib.format_spec(shrunk), num_classes=3)
    with pytest.raises(ValueError, match="depth and width"):
        scale_spec(a0, depth=0.0)


def test_scaled_input():
    assert scaled_input(50, 172, resolution=1.3, frame_rate=0.8) == (40, 224)
    assert scaled_input(8, 32, resolution=0.1, frame_rate=0.01) == (1, 16)


def test_random_scaling_search_meets_the_target():
    a0 = movinet_tf.get_spec("a0")
    settings = dict(conv_type="3d", se_type="3d", causal=False, num_classes=600)
    target = 5.866e9  # A1's multiply-adds per clip (tests/models/test_flops.py)
    candidates = random_scaling_search(a0, 50, 172, target, num_samples=200, tolerance=0.05,
                                       seed=0, model_settings=settings)
    assert candidates
    best = candidates[0]
    assert abs(best["macs"] / target - 1) <= 0.05
    assert best["macs"] == spec_macs(best["spec"], [1, best["frames"], best["size"],
                                                    best["size"], 3], **settings)
    # A larger target needs larger coefficients on average (the search moves, not just filters).
    product = lambda c: c["depth"] * c["width"] ** 2 * c["resolution"] ** 2 * c["frame_rate"]
    assert product(best) > 1.5


def test_random_scaling_search_ranks_by_evaluation_and_fixes_coefficients():
    a0 = movinet_tf.get_spec("a0")
    ranges = dict(depth=(1, 1), resolution=(1, 1), frame_rate=(1, 1), width=(0.1, 1.0))
    evaluated = []

    def evaluate(candidate):
        evaluated.append(candidate)
        return -candidate["width"]  # pretend narrower is better

    candidates = random_scaling_search(a0, 1, 32, 0.9e6, num_samples=300, ranges=ranges,
                                       tolerance=0.1, model_settings=dict(num_classes=10),
                                       scale_classifier=True, evaluate=evaluate, num_evaluate=3)
    assert len(evaluated) == min(3, len(candidates)) >= 2
    assert all(c["depth"] == 1 and c["frames"] == 1 and c["size"] == 32 for c in candidates)
    qualities = [c["quality"] for c in candidates[:len(evaluated)]]
    assert qualities == sorted(qualities, reverse=True)
    with pytest.raises(ValueError, match="Unknown scaling"):
        random_scaling_search(a0, 1, 32, 1e6, ranges={"height": (1, 2)})
