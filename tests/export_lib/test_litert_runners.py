"""litert_runners: the buffer-overlap check, and a signature bound once with its views kept."""
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from movinet_tf.export_lib.litert_runners import BoundSignature, buffers_overlap


def test_overlap_of_buffer_ranges():
    assert not buffers_overlap([(0, 10), (10, 20), (30, 40)])   # touching is not sharing
    assert buffers_overlap([(30, 40), (0, 10), (9, 20)])
    assert buffers_overlap([(0, 100), (20, 30)])   # one buffer inside another
    assert not buffers_overlap([])


def _tiny_model(tmp_path, batch):
    """A converted `y = 2x + s`, `s_out = s + 1` signature (x: [batch, 4]; None = dynamic)."""
    @tf.function(input_signature=[tf.TensorSpec([batch, 4], tf.float32, name="x"),
                                  tf.TensorSpec([1, 4], tf.float32, name="s")])
    def serve(x, s):
        return {"y": 2.0 * x + s, "s_out": s + 1.0}

    holder = tf.Module()
    holder.serve = serve
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [serve.get_concrete_function()], holder)
    path = tmp_path / f"tiny_{batch}.tflite"
    path.write_bytes(converter.convert())
    return path


def test_bound_signature_keeps_its_views_and_reads_copies(tmp_path):
    bound = BoundSignature(Interpreter(model_path=str(_tiny_model(tmp_path, 1))),
                           "serving_default")
    state = np.zeros([1, 4], np.float32)
    outputs = []
    for step in range(3):
        bound.write("x", np.full([1, 4], step, np.float32))
        bound.write("s", state)
        bound.invoke()
        state = bound.output_views["s_out"]   # Carried from the output buffer, as a stream does.
        outputs.append(bound.read("y"))
    # Each read is a copy: later invokes do not change it.
    np.testing.assert_array_equal(np.stack(outputs)[:, 0, 0], [0.0, 3.0, 6.0])
    np.testing.assert_array_equal(state, np.full([1, 4], 3.0))
    # The views are the tensors' own buffers, made once.
    view = bound.input_views["x"]
    assert view.ctypes.data == bound.view(bound.inputs["x"]).ctypes.data
    with pytest.raises(ValueError, match=r"takes shape \[1, 4\]"):
        bound.write("x", np.zeros([2, 4], np.float32))


def test_bound_signature_refuses_dynamic_shapes(tmp_path):
    interpreter = Interpreter(model_path=str(_tiny_model(tmp_path, None)))
    with pytest.raises(ValueError, match="dynamic shape"):
        BoundSignature(interpreter, "serving_default")
