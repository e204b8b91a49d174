"""The analytic cost model agrees with `count_flops` of the built model."""
import numpy as np
import pytest

import movinet_tf
from movinet_tf.models import specs as specs_lib
from movinet_tf.nas.cost import FlopsCost, spec_macs

from tests.nas.spaces import small_space


@pytest.mark.parametrize("stream,conv_type,se_type,shape", [
    (True, "2plus1d", "2plus3d", [1, 1, 32, 32, 3]),   # the search's cost: one streamed frame
    (True, "3d_2plus1d", "2d", [2, 3, 33, 33, 3]),     # odd sizes, several frames
    (False, "3d", "3d", [1, 4, 40, 40, 3]),            # base model: the SE pools the clip
    (False, "2plus1d", "none", [1, 2, 32, 32, 3]),
])
def test_spec_macs_equals_count_flops(stream, conv_type, se_type, shape):
    space = small_space()
    rng = np.random.default_rng(7)
    checked, strided_temporal_only = 0, False
    # Until a point with a strided (kt, 1, 1) depthwise layer has been counted, too.
    while checked < 2 or not strided_temporal_only:
        spec = space.decode(space.sample(rng))
        strided_temporal_only |= any(l.spatial_stride == 2 and l.kernel_size[1] == 1
                                     for b in spec.blocks for l in b.layers)
        checked += 1
        model = movinet_tf.build_model("x", stream=stream, conv_type=conv_type, se_type=se_type,
                                       num_classes=7, block_specs=specs_lib.format_spec(spec))
        counted = movinet_tf.count_flops(model, shape)
        assert spec_macs(spec, shape, conv_type, se_type, causal=stream, num_classes=7) == counted


def test_spec_macs_of_a0_stream_per_frame():
    # Our full count of the A0-stream per frame at 172x172: 0.0507 G, the official
    # 0.0453 G plus the depthwise convs its counter leaves out (tests/models/test_flops.py).
    macs = spec_macs(movinet_tf.get_spec("a0"), [1, 1, 172, 172, 3], "2plus1d", "2plus3d",
                     causal=True, num_classes=600)
    model = movinet_tf.build_model("a0", stream=True)
    assert macs == movinet_tf.count_flops(model, [1, 1, 172, 172, 3])
    assert macs / 1e9 == pytest.approx(0.0507, rel=0.01)


def test_flops_cost_is_per_frame_in_millions_and_cached():
    space = small_space()
    spec = space.decode(space.sample(np.random.default_rng(0)))
    cost = FlopsCost(32, dict(conv_type="2plus1d", se_type="2plus3d", causal=True,
                              num_classes=10))
    value = cost(spec)
    assert value == spec_macs(spec, [1, 1, 32, 32, 3], "2plus1d", "2plus3d", True, 10) / 1e6
    assert cost(specs_lib.format_spec(spec)) == value
    assert len(cost._cache) == 1


@pytest.mark.slow
def test_tflite_latency_measures_the_streaming_model_once_per_spec():
    from movinet_tf.nas.cost import TfliteLatency
    spec = "stem 8\nblock 8: e16_k155_s2\nblock 8: e16_k333_s2\nblock 16: e32_k511_s2\n" \
           "block 16: e32_k133\nblock 16: e32_k533_s2\nhead 16\nclassifier 16"
    built = []

    def build(text):
        built.append(text)
        return movinet_tf.build_model("x", stream=True, num_classes=4, block_specs=text)

    latency = TfliteLatency(32, build, runs=5)
    first = latency(spec)
    assert 0 < first < 1000  # milliseconds for one 32x32 frame of a tiny model
    assert latency(specs_lib.parse_spec(spec)) == first
    assert len(built) == 1
    with pytest.raises(ValueError, match="stream"):
        TfliteLatency(32, lambda text: movinet_tf.build_model("x", block_specs=text))(
            spec.replace("head 16", "head 24"))
