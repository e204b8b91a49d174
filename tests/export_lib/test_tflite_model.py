"""TFLiteStreamer's in-place steps (BoundSignature) against LiteRT's own signature runner."""
import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from helpers import runner_zero_states
from movinet_tf.export_lib import TFLiteStreamer


def _runner_stream(path, images):
    """The reference: LiteRT's signature runner, every state output fed back as it is."""
    runner = Interpreter(model_path=str(path)).get_signature_runner()
    states, logits = runner_zero_states(runner), []
    for image in images:
        outputs = dict(runner(image=image, **states))
        logits.append(outputs.pop("logits").reshape(-1))
        states = outputs
    return logits, states


@pytest.mark.parametrize("mode", ["none", "int8"])
def test_in_place_steps_equal_the_signature_runner_bit_for_bit(exports, test_clips, mode):
    path = exports(mode).model_path
    streamer = TFLiteStreamer(path)
    assert streamer.bound_signatures is not None   # this file's buffers do not overlap
    images = [streamer.model_input(frame) for clip in test_clips[:2] for frame in clip]
    expected_logits, expected_states = _runner_stream(path, images)
    assert max(np.abs(logit).max() for logit in expected_logits) > 1.0
    for image, expected in zip(images, expected_logits):
        np.testing.assert_array_equal(streamer.advance(image), expected.astype(np.float32))
    states = streamer.states
    assert sorted(states) == sorted(expected_states)
    for name, value in expected_states.items():
        np.testing.assert_array_equal(states[name], value, err_msg=name)
    assert any(np.abs(value).max() > 0 for value in states.values())
    # `states` is a copy: writing into it changes nothing in the stream.
    for value in states.values():
        value[...] = 7
    np.testing.assert_array_equal(streamer.states[streamer.state_names[0]],
                                  expected_states[streamer.state_names[0]])
    # reset() starts from zero states: the first frames come out as they did.
    streamer.reset()
    for name, value in streamer.states.items():   # an int8 state at its zero point
        np.testing.assert_array_equal(value, runner_zero_states(streamer.runner)[name])
    if mode == "int8":
        assert any(np.any(value) for value in streamer.states.values())
    for image, expected in zip(images[:3], expected_logits[:3]):
        np.testing.assert_array_equal(streamer.advance(image), expected.astype(np.float32))


def test_an_input_of_the_wrong_shape_is_named(exports):
    streamer = TFLiteStreamer(exports("none").model_path)
    with pytest.raises(ValueError, match="input 'image' takes shape"):
        streamer.advance(np.zeros([1, 2, 3], np.float32))


def _integer_state_model(directory):
    """A tiny full-integer stream model (int8 image, state and logits, as the official recipe
    converts): a running sum like CGAP's, state' = state + channel means of the image, and
    logits = state' W.

    Calibrated on 40 frames, the state output reaches one frame further than the state
    input, so the converter gives the two tensors different scales. Returns (tflite path,
    float reference fn).
    """
    import tensorflow as tf
    weights = np.random.default_rng(3).normal(size=[3, 5]).astype(np.float32)

    class Stream(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 1, 4, 4, 3], tf.float32, "image"),
                                      tf.TensorSpec([1, 3], tf.float32, "state")])
        def serve(self, image, state):
            new_state = state + tf.reduce_mean(image, axis=[1, 2, 3])
            return {"logits": tf.matmul(new_state, weights), "state": new_state}

    module = Stream()
    saved = str(directory / "saved")
    tf.saved_model.save(module, saved, signatures={"serving_default": module.serve})
    rng = np.random.default_rng(4)

    def representative():
        state = np.zeros([1, 3], np.float32)
        for _ in range(40):
            image = rng.uniform(0, 1, [1, 1, 4, 4, 3]).astype(np.float32)
            yield {"image": image, "state": state}
            state = state + image.mean(axis=(1, 2, 3))

    converter = tf.lite.TFLiteConverter.from_saved_model(saved)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    path = directory / "integer_states.tflite"
    path.write_bytes(converter.convert())

    def reference(images):
        state, logits = np.zeros([1, 3], np.float32), []
        for image in images:
            state = state + image.mean(axis=(1, 2, 3))
            logits.append((state @ weights).reshape(-1))
        return logits
    return path, reference


def test_integer_states_start_at_their_zero_point_and_are_requantized(tmp_path):
    path, reference = _integer_state_model(tmp_path)
    streamer = TFLiteStreamer(str(path))
    given = streamer.runner.get_output_details()["state"]["quantization"]
    taken = streamer.runner.get_input_details()["state"]["quantization"]
    assert given != taken   # the case under test: the output's scale is not the input's
    assert taken[1] != 0 and np.all(streamer.states["state"] == taken[1])
    frames = [np.random.default_rng(5).uniform(0, 1, [4, 4, 3]).astype(np.float32)
              for _ in range(30)]
    logits = [streamer.step(frame) for frame in frames]
    expected = reference([frame[None, None] for frame in frames])
    # int8 arithmetic: each logit within 5% of the largest float logit. Reading the state
    # output with the input's scale (about 2.5% apart) instead would shrink the sum by that
    # factor every frame, about 30% after 30 frames (30 stay inside the calibrated range).
    error = max(np.abs(got - want).max() for got, want in zip(logits, expected))
    scale = max(np.abs(want).max() for want in expected)
    assert scale > 1.0 and error < 0.05 * scale, (error, scale)
    # `states` is in the input's scale, as the next call takes it: after 30 frames (sums
    # of 11-18), within half an input step of what a separate runner outputs for the last
    # frame from the states before it. Handing out the output's scale instead was off by
    # up to 0.11, about two input steps.
    carried = TFLiteStreamer(str(path))
    for frame in frames[:-1]:
        carried.step(frame)
    before = carried.states["state"]
    carried.step(frames[-1])
    got = (carried.states["state"].astype(np.float32) - taken[1]) * taken[0]
    runner = Interpreter(model_path=str(path)).get_signature_runner()
    output = runner(image=carried.model_input(frames[-1]), state=before)["state"]
    want = (output.astype(np.float32) - given[1]) * given[0]
    assert np.abs(want).max() > 10.0
    assert np.abs(got - want).max() <= 0.5 * taken[0] + 1e-6, (got, want)
