"""The folded single-frame export graph computes what the Keras stream model computes."""
import numpy as np
import pytest

import movinet_tf
from helpers import frame_graph_step, keras_step, randomize_weights, random_video
from helpers import stream_per_frame
from movinet_tf.export_lib import FrameGraph

from .conftest import IMAGE_SIZE


def _stream_both(model, graph, clip):
    """Max |logit difference| over every frame of `clip`, Keras stream call vs graph."""
    expected, _ = stream_per_frame(keras_step(model), clip,
                                   model.init_states([1, 1, *clip.shape[1:]]))
    got, _ = stream_per_frame(frame_graph_step(graph), clip, graph.init_states("frame"))
    return float(np.max(np.abs(got - expected))), float(np.max(np.abs(expected)))


def test_a0_frame_graph_equals_keras_stream(a0_stream, test_clips):
    graph = FrameGraph(a0_stream, IMAGE_SIZE)
    worst, scale = _stream_both(a0_stream, graph, test_clips[0])
    assert scale > 1.0  # Random weights give logits far from 0, so 1e-4 is a real bound.
    assert worst < 1e-4


@pytest.mark.parametrize("overrides", [
    # 3d convs (buffer before the spatial conv), 3d SE, positional encoding, swish.
    dict(conv_type="3d", se_type="3d", use_positional_encoding=True, activation="swish"),
    # 2d SE (stateless), no SE.
    dict(se_type="2d"),
    dict(se_type="none"),
])
def test_other_layer_types_equal_keras_stream(overrides):
    spec = "stem 8\nblock 8: e16_k355_s2\nblock 16: e24_k333_s2 e24_k233\nhead 32\nclassifier 40"
    model = movinet_tf.build_model("custom", stream=True, num_classes=4, block_specs=spec,
                                   **overrides)
    randomize_weights(model, seed=5)
    clip = random_video([1, 5, 24, 40, 3], seed=9)[0]  # non-square: H and W must not be swapped
    worst, scale = _stream_both(model, FrameGraph(model, (24, 40)), clip)
    assert scale > 0.1
    assert worst < 1e-4


def test_state_layouts(a0_stream):
    graph = FrameGraph(a0_stream, IMAGE_SIZE)
    published = graph.state_shapes("published")
    specs = a0_stream.state_specs([1, 1, IMAGE_SIZE, IMAGE_SIZE, 3])
    assert list(published) == list(specs)
    assert len(published) == 43  # A0-stream's published state count
    for name, (shape, dtype) in published.items():
        assert shape == tuple(specs[name].shape.as_list()) and dtype == specs[name].dtype
    frame = graph.state_shapes("frame")
    assert max(len(shape) for shape, _ in frame.values()) == 4
    assert frame["state_block1_layer0_stream_buffer"][0] == \
        published["state_block1_layer0_stream_buffer"][0][1:]
    with pytest.raises(ValueError, match="layout"):
        graph.state_shapes("nchw")


def test_rejects_base_model():
    model = movinet_tf.build_model("a0", stream=False, num_classes=3)
    with pytest.raises(ValueError, match="stream model"):
        FrameGraph(model, IMAGE_SIZE)
