"""The functional core (layers/ops.py) against independent numpy computations."""
import numpy as np
import pytest
import tensorflow as tf

from movinet_tf.layers import ops


def test_count_macs_counts_a_hand_counted_conv_and_nests():
    x = tf.random.stateless_uniform([1, 2, 6, 6, 4], seed=[1, 2])
    kernel = tf.random.stateless_normal([3, 3, 3, 4, 5], seed=[3, 4])
    depthwise = tf.random.stateless_normal([1, 3, 3, 1, 4], seed=[5, 6])
    with ops.count_macs() as outer:
        ops.conv_time(ops.pad_time(x, 3, causal=True), kernel, (2, 2), False, 2)
        with ops.count_macs() as inner:
            ops.conv_frames(x, depthwise, (1, 1), True)
    # Outputs 2 x 3 x 3 positions x 5 channels, 27 taps x 4 inputs each.
    conv = 2 * 3 * 3 * 5 * 27 * 4
    dw = 2 * 6 * 6 * 4 * 9
    assert inner.by_kind() == {"conv": 0, "depthwise": dw}
    assert outer.by_kind() == {"conv": conv, "depthwise": dw}
    assert outer.total == conv + dw
    # Outside a block nothing is recorded.
    ops.conv_frames(x, depthwise, (1, 1), True)
    assert outer.total == conv + dw


def test_conv_time_equals_a_numpy_3d_convolution():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 4, 5, 5, 2)).astype(np.float32)
    kernel = rng.normal(size=(2, 3, 3, 2, 3)).astype(np.float32)
    got = ops.conv_time(ops.pad_time(tf.constant(x), 2, causal=True), tf.constant(kernel),
                        (1, 1), False, 4).numpy()
    padded = np.pad(x, [(0, 0), (1, 0), (1, 1), (1, 1), (0, 0)])  # causal in t, SAME in h, w
    want = np.zeros((1, 4, 5, 5, 3), np.float64)
    for t in range(4):
        for i in range(5):
            for j in range(5):
                window = padded[0, t:t + 2, i:i + 3, j:j + 3]  # [2, 3, 3, Cin]
                want[0, t, i, j] = np.einsum("abcd,abcde->e", window, kernel)
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_running_mean_step_equals_the_mean_of_the_frames():
    rng = np.random.default_rng(1)
    frames = rng.normal(size=(6, 1, 1, 1, 3)).astype(np.float32)
    mean = tf.zeros([1, 1, 1, 1, 3])
    count = tf.zeros([1], tf.int32)
    for t in range(6):
        _, mean, count = ops.running_mean_step(mean, count, tf.constant(frames[t]))
        np.testing.assert_allclose(mean.numpy()[0], frames[:t + 1].mean(axis=0), atol=1e-6)
    assert mean.shape == (1, 1, 1, 1, 3) and int(count[0]) == 6
    clip = ops.cumulative_mean(tf.constant(frames[:, 0][None]), causal=True).numpy()
    np.testing.assert_allclose(clip[0, -1], frames.mean(axis=0)[0], atol=1e-6)


def test_sinusoid_encoding_matches_the_formula():
    channels, timescale = 6, 10000
    got = ops.sinusoid_encoding(tf.constant([[0.0], [3.0]]), channels, timescale).numpy()
    w = [timescale ** (-2.0 * k / channels) for k in range(channels // 2)]
    want = [[np.sin(p * wk) for wk in w] + [np.cos(p * wk) for wk in w] for p in (0.0, 3.0)]
    np.testing.assert_allclose(got, want, atol=1e-6)


@pytest.mark.parametrize("size", [(7, 9), (8, 8)])
def test_window_mean_equals_average_pool(size):
    x = tf.random.stateless_uniform([1, *size, 4], seed=[7, 8])
    got = ops.window_mean_3x3(x, (2, 2))
    want = ops.average_pool_3x3(x[None], (2, 2))[0]
    np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-6)


def _buffer_concat_grads(concat, buffer, x, weights, tail_weights, static_time):
    """Gradients of sum(full * weights) + sum(next_buffer * tail_weights) in a tf.function."""
    time_dim = x.shape[1] if static_time else None

    @tf.function(input_signature=[tf.TensorSpec(buffer.shape, tf.float32),
                                  tf.TensorSpec([x.shape[0], time_dim] + list(x.shape[2:]),
                                                tf.float32)])
    def grads(buffer, x):
        with tf.GradientTape() as tape:
            tape.watch([buffer, x])
            full, next_buffer = concat(buffer, x)
            loss = tf.reduce_sum(full * weights) + tf.reduce_sum(next_buffer * tail_weights)
        return [full, next_buffer] + tape.gradient(loss, [buffer, x])

    return [t.numpy() for t in grads(tf.constant(buffer), tf.constant(x))]


def _concat_and_slice(buffer, x):
    full = tf.concat([buffer, x], axis=1)
    return full, full[:, -buffer.shape[1]:]


@pytest.mark.parametrize("frames, k, static_time", [(5, 2, True), (2, 2, True), (1, 4, True),
                                                    (3, 4, False), (6, 2, False)])
def test_buffer_concat_gives_the_values_and_gradients_of_concat_and_slice(frames, k,
                                                                          static_time):
    # The custom gradient (under a tape) against TensorFlow's own gradient of a concat
    # and a slice: the next buffer within x (frames >= k) or reaching into the old
    # buffer (frames < k), with static and unknown clip lengths.
    rng = np.random.default_rng(frames * 10 + k)
    buffer = rng.normal(size=(2, k, 3, 3, 4)).astype(np.float32)
    x = rng.normal(size=(2, frames, 3, 3, 4)).astype(np.float32)
    weights = rng.normal(size=(2, k + frames, 3, 3, 4)).astype(np.float32)
    tail_weights = rng.normal(size=(2, k, 3, 3, 4)).astype(np.float32)
    ours = _buffer_concat_grads(ops.buffer_concat, buffer, x, weights, tail_weights,
                                static_time)
    reference = _buffer_concat_grads(_concat_and_slice, buffer, x, weights, tail_weights,
                                     static_time)
    for name, got, want in zip(["full", "next buffer", "d buffer", "d x"], ours, reference):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6, err_msg=name)
    # The next buffer's gradient reaches x's last frames (or the old buffer's).
    assert not np.allclose(ours[3], weights[:, k:])


def test_buffer_concat_without_a_tape_is_a_plain_concat():
    buffer = tf.random.stateless_normal([1, 2, 3, 3, 4], seed=[1, 1])
    x = tf.random.stateless_normal([1, 3, 3, 3, 4], seed=[2, 2])
    graph = tf.function(ops.buffer_concat).get_concrete_function(buffer, x).graph
    assert "IdentityN" not in [op.type for op in graph.get_operations()]
    full, next_buffer = ops.buffer_concat(buffer, x)
    np.testing.assert_array_equal(full.numpy(), tf.concat([buffer, x], 1).numpy())
    np.testing.assert_array_equal(next_buffer.numpy(), x.numpy()[:, -2:])
    with pytest.raises(ValueError, match="static buffer length"):
        tf.function(ops.buffer_concat).get_concrete_function(
            tf.TensorSpec([1, None, 3, 3, 4]), x)
