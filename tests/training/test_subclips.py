"""Sub-clip training: exact whole-clip loss and gradients for any number of sub-clips."""
import keras
import numpy as np
import pytest
import tensorflow as tf

import movinet_tf
from movinet_tf.training import subclips
from helpers import random_video, randomize_weights

NUM_CLASSES = 5
VIDEO_SHAPE = (2, 8, 32, 32, 3)
LABELS = np.array([1, 3], np.int32)
# Gradients: elementwise rtol 1e-4 plus an atol of 1e-4 x the largest |gradient|
# of the same variable (float32 sums in a different order; tiny elements differ
# relatively more). Measured worst case about 1.4e-5 of the max.
GRAD_RTOL = 1e-4
GRAD_ATOL_OF_MAX = 1e-4


def loss_fn(labels, logits):
    return tf.reduce_mean(
        keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))


def _model(dropout_rate=0.0):
    # Stochastic depth left at its default 0.2: sub-clip training must turn it off.
    model = movinet_tf.build_model("a0", stream=True, num_classes=NUM_CLASSES,
                                   dropout_rate=dropout_rate, input_shape=(None, 32, 32, 3))
    return randomize_weights(model, seed=3)


@pytest.fixture(scope="module")
def model():
    return _model()


@pytest.fixture(scope="module")
def video():
    return random_video(VIDEO_SHAPE, seed=5)


@pytest.fixture(scope="module")
def whole_clip(model, video):
    """Loss, logits and gradients of one tape over the whole clip (inference-mode BN)."""
    with tf.GradientTape() as tape:
        logits = model(video, training=False)
        loss = loss_fn(LABELS, logits)
    grads = tape.gradient(loss, model.trainable_variables)
    return float(loss), logits.numpy(), [g.numpy() for g in grads]


@pytest.fixture(scope="module")
def one_subclip(model, video):
    loss, logits, grads = subclips.subclip_loss_and_grads(model, video, LABELS, loss_fn, 1)
    return float(loss), logits.numpy(), grads


def _assert_grads_equal(grads, expected, variables, what):
    assert len(grads) == len(expected) == len(variables)
    for g, e, v in zip(grads, expected, variables):
        assert g is not None, f"{what}: no gradient for {v.path}"
        e = np.asarray(e)
        np.testing.assert_allclose(
            np.asarray(g), e, rtol=GRAD_RTOL, atol=GRAD_ATOL_OF_MAX * np.max(np.abs(e)),
            err_msg=f"{what}: gradient of {v.path}")


def test_subclip_bounds_cover_the_clip_in_order():
    assert subclips.subclip_bounds(8, 1) == [(0, 8)]
    assert subclips.subclip_bounds(8, 4) == [(0, 2), (2, 4), (4, 6), (6, 8)]
    # Uneven: sizes differ by one, the longer ones first (as numpy.array_split).
    assert subclips.subclip_bounds(8, 3) == [(0, 3), (3, 6), (6, 8)]
    assert subclips.subclip_bounds(8, 8) == [(k, k + 1) for k in range(8)]
    dynamic = subclips.subclip_bounds(tf.constant(10), 4)
    assert [(int(a), int(b)) for a, b in dynamic] == subclips.subclip_bounds(10, 4)
    assert subclips.subclip_bounds(10, 4) == [(0, 3), (3, 6), (6, 8), (8, 10)]


def test_one_subclip_equals_the_whole_clip_tape(model, whole_clip, one_subclip):
    loss, logits, grads = one_subclip
    np.testing.assert_allclose(loss, whole_clip[0], atol=1e-6, rtol=0)
    np.testing.assert_allclose(logits, whole_clip[1], atol=1e-6, rtol=0)
    _assert_grads_equal(grads, whole_clip[2], model.trainable_variables, "n=1 vs whole clip")
    # The random weights give a loss far from chance, so the test has teeth.
    assert abs(loss - np.log(NUM_CLASSES)) > 0.05


@pytest.mark.parametrize("num_subclips", [2, 3, 4])
def test_subclips_give_the_loss_and_gradients_of_one_clip(model, video, one_subclip,
                                                          num_subclips):
    # 3 does not divide the 8 frames: sub-clips of 3, 3 and 2 frames.
    loss, logits, grads = subclips.subclip_loss_and_grads(
        model, video, LABELS, loss_fn, num_subclips, training=True)
    np.testing.assert_allclose(float(loss), one_subclip[0], atol=1e-5, rtol=0)
    np.testing.assert_allclose(logits.numpy(), one_subclip[1], atol=1e-5, rtol=0)
    _assert_grads_equal([g.numpy() for g in grads], [g.numpy() for g in one_subclip[2]],
                        model.trainable_variables, f"n={num_subclips} vs n=1")


def test_gradients_cross_subclip_boundaries(model, video, one_subclip):
    """Gradients through the states matter: dropping them (truncated BPTT) changes the result."""
    bounds = subclips.subclip_bounds(video.shape[1], 2)
    states = model.init_states(video.shape)
    _, states = model({**states, "image": video[:, :bounds[0][1]]})
    states = {k: tf.stop_gradient(v) for k, v in states.items()}
    with tf.GradientTape() as tape:
        logits, _ = model({**states, "image": video[:, bounds[1][0]:]}, training=False)
        loss = loss_fn(LABELS, logits)
    truncated = tape.gradient(loss, model.trainable_variables)
    exact = [g.numpy() for g in one_subclip[2]]
    stem = [i for i, v in enumerate(model.trainable_variables) if "stem" in v.path]
    assert stem
    # The stem's gradient from the second half alone is far from the exact one.
    for i in stem:
        diff = np.max(np.abs(truncated[i].numpy() - exact[i]))
        assert diff > 0.1 * np.max(np.abs(exact[i])), model.trainable_variables[i].path


def test_training_freezes_batch_norm_and_stochastic_depth(model, video, whole_clip):
    moving = {v.path: v.numpy() for v in model.non_trainable_variables if "moving" in v.path}
    assert moving
    loss, logits, _ = subclips.subclip_loss_and_grads(
        model, video, LABELS, loss_fn, 2, training=True)
    for v in model.non_trainable_variables:
        if v.path in moving:
            np.testing.assert_array_equal(v.numpy(), moving[v.path], err_msg=v.path)
    # Same as inference, although the model has stochastic depth 0.2 and BN in
    # training mode would use batch statistics.
    np.testing.assert_allclose(logits.numpy(), whole_clip[1], atol=1e-5, rtol=0)
    training_logits = model(video, training=True).numpy()
    for v in model.non_trainable_variables:  # That call updated the moving statistics.
        if v.path in moving:
            v.assign(moving[v.path])
    assert np.max(np.abs(training_logits - whole_clip[1])) > 1e-3


def test_dropout_is_drawn_once_per_step_whatever_the_split(video):
    model = _model(dropout_rate=0.5)
    seed_state = model.classifier_head.dropout.seed_generator.state
    start = seed_state.numpy()
    results = []
    for n in (1, 4):
        seed_state.assign(start)
        loss, logits, _ = subclips.subclip_loss_and_grads(model, video, LABELS, loss_fn, n,
                                                          training=True)
        results.append((float(loss), logits.numpy()))
    np.testing.assert_allclose(results[1][1], results[0][1], atol=1e-5, rtol=0)
    np.testing.assert_allclose(results[1][0], results[0][0], atol=1e-5, rtol=0)
    # Dropout is really on in training and off otherwise.
    _, inference_logits, _ = subclips.subclip_loss_and_grads(model, video, LABELS, loss_fn, 4,
                                                             training=False)
    np.testing.assert_allclose(inference_logits.numpy(), model(video, training=False).numpy(),
                               atol=1e-5, rtol=0)
    assert np.max(np.abs(results[0][1] - inference_logits.numpy())) > 1e-3


def test_scale_loss_scales_the_gradients_not_the_loss(model, video, one_subclip):
    loss, _, grads = subclips.subclip_loss_and_grads(
        model, video, LABELS, loss_fn, 2, scale_loss=lambda value: value * 8.0)
    np.testing.assert_allclose(float(loss), one_subclip[0], atol=1e-5, rtol=0)
    _assert_grads_equal([g.numpy() / 8.0 for g in grads], [g.numpy() for g in one_subclip[2]],
                        model.trainable_variables, "scaled loss / 8 vs n=1")


@pytest.mark.parametrize("num_subclips", [0, -1, 9])
def test_a_wrong_number_of_subclips_raises(model, video, num_subclips):
    with pytest.raises(ValueError, match="num_subclips"):
        subclips.subclip_loss_and_grads(model, video, LABELS, loss_fn, num_subclips)


def test_bad_arguments_raise():
    with pytest.raises(TypeError, match="num_subclips"):
        subclips.subclip_bounds(8, 2.5)
    with pytest.raises(TypeError, match="num_subclips"):
        subclips.subclip_bounds(8, True)
    base = movinet_tf.build_model("a0", num_classes=NUM_CLASSES)
    with pytest.raises(ValueError, match="stream model"):
        subclips.subclip_loss_and_grads(base, random_video((1, 4, 32, 32, 3)), LABELS[:1],
                                        loss_fn, 2)


@pytest.mark.slow
@pytest.mark.parametrize("num_subclips", [2, 3])
def test_inside_tf_function_equals_eager(model, video, one_subclip, num_subclips):
    # 3 sub-clips of 3, 3 and 2 frames: the loop runs on clips of unknown length.
    step = tf.function(lambda v, y: subclips.subclip_loss_and_grads(
        model, v, y, loss_fn, num_subclips, training=True))
    loss, logits, grads = step(tf.constant(video), tf.constant(LABELS))
    np.testing.assert_allclose(float(loss), one_subclip[0], atol=1e-5, rtol=0)
    np.testing.assert_allclose(logits.numpy(), one_subclip[1], atol=1e-5, rtol=0)
    _assert_grads_equal([g.numpy() for g in grads], [g.numpy() for g in one_subclip[2]],
                        model.trainable_variables, f"tf.function n={num_subclips} vs n=1")


def _traced_nodes(model, video, num_subclips):
    """Nodes of the traced step, counting those inside loop bodies and branches."""
    step = tf.function(lambda v, y: subclips.subclip_loss_and_grads(
        model, v, y, loss_fn, num_subclips, training=True)[2])
    graph_def = step.get_concrete_function(tf.constant(video), tf.constant(LABELS)) \
        .graph.as_graph_def()
    ops = [node.op for node in graph_def.node]
    for function in graph_def.library.function:
        ops += [node.op for node in function.node_def]
    return ops


@pytest.mark.slow
def test_traced_graph_does_not_grow_with_the_number_of_subclips(model):
    # Traced, not run: a structural check. Unrolling the sub-clips in Python would
    # give about 4x the convolutions for n=8 than for n=2. (32 frames, so that every
    # sub-clip is at least as long as the longest stream buffer, 4 frames: a shorter
    # one takes other code paths in the layers and in the buffers' gradient.)
    video = random_video((2, 32, 32, 32, 3), seed=6)
    two, eight = _traced_nodes(model, video, 2), _traced_nodes(model, video, 8)
    assert len(eight) == len(two)
    convolutions = sorted(op for op in two if "Conv" in op)
    assert convolutions and convolutions == sorted(op for op in eight if "Conv" in op)


@pytest.mark.parametrize("num_subclips", [1, 2, 3])
def test_python_driven_pieces_give_the_loss_and_gradients_of_one_clip(model, video, one_subclip,
                                                                     num_subclips):
    # The trainer's path (SubclipGradients: sub-clips driven from Python, two traced
    # pieces); 3 sub-clips of 3, 3 and 2 frames retrace the pieces for the short clip.
    pieces = subclips.SubclipGradients(model, loss_fn, num_subclips, training=True)
    for _ in range(2):  # a second step reuses the traces and starts its sums from zero
        loss, logits, grads = pieces(video, LABELS)
        np.testing.assert_allclose(float(loss), one_subclip[0], atol=1e-5, rtol=0)
        np.testing.assert_allclose(logits.numpy(), one_subclip[1], atol=1e-5, rtol=0)
        _assert_grads_equal([g.numpy() for g in grads], [g.numpy() for g in one_subclip[2]],
                            model.trainable_variables, f"pieces n={num_subclips} vs n=1")
    # One whole-clip trace for n=1; otherwise one per piece and clip length (n=3: the
    # forward piece sees 3 frames only, the backward piece 2 and 3), plus the two that
    # zero and read the gradient sums.
    assert pieces.tracing_count() == {1: 1, 2: 4, 3: 5}[num_subclips]


def test_python_driven_pieces_draw_dropout_once_and_refuse_tf_function(video):
    model = _model(dropout_rate=0.5)
    seed_state = model.classifier_head.dropout.seed_generator.state
    start = seed_state.numpy()
    loss_1, logits_1, _ = subclips.subclip_loss_and_grads(model, video, LABELS, loss_fn, 1,
                                                          training=True)
    after_one = seed_state.numpy()
    seed_state.assign(start)
    loss_4, logits_4, _ = subclips.SubclipGradients(model, loss_fn, 4, training=True)(
        video, LABELS)
    np.testing.assert_allclose(logits_4.numpy(), logits_1.numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(float(loss_4), float(loss_1), atol=1e-5, rtol=0)
    np.testing.assert_array_equal(seed_state.numpy(), after_one)  # one mask per step
    pieces = subclips.SubclipGradients(model, loss_fn, 2)
    with pytest.raises(RuntimeError, match="call it eagerly"):
        tf.function(lambda v: pieces(v, LABELS)[0])(tf.constant(video))
    with pytest.raises(ValueError, match="needs a stream model"):
        subclips.SubclipGradients(movinet_tf.build_model("a0", stream=False, num_classes=5),
                                  loss_fn, 2)
