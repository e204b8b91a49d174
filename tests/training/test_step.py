"""The train step: per-tensor clipping from one sum of squares, and a whole step against a
step written out with TF's and Keras's own pieces (`tf.clip_by_norm`, `keras.optimizers.Adam`)."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from movinet_tf import config as config_lib
from movinet_tf.training import state as state_lib
from movinet_tf.training import step as step_lib
from tests.helpers import randomize_weights


@pytest.mark.parametrize("clipnorm, scale", [(1.0, 1.0), (0.5, 128.0), (0.0, 1.0)])
def test_clip_each_matches_clip_by_norm_and_global_norm(clipnorm, scale):
    rng = np.random.default_rng(0)
    # Norms from 0.01 to 100: some tensors are clipped, some are not; one is all zeros.
    grads = [tf.constant(rng.normal(size=s).astype(np.float32) * 10 ** rng.uniform(-2, 2) * scale)
             for s in [(3,), (4, 5), (2, 3, 3, 1, 6), (8,)]]
    grads.append(tf.zeros((5,)))
    clipped, norm = step_lib.clip_each(grads, clipnorm, scale)
    expected_norm = tf.linalg.global_norm(grads) / scale
    np.testing.assert_allclose(float(norm), float(expected_norm), rtol=1e-6)
    for ours, g in zip(clipped, grads):
        expected = tf.clip_by_norm(g / scale, clipnorm) * scale if clipnorm > 0 else g
        np.testing.assert_allclose(ours.numpy(), expected.numpy(), rtol=1e-6, atol=1e-7 * scale)
    norms = [float(tf.norm(g)) / scale for g in grads]
    assert min(norms) < max(clipnorm, 0.01) and max(norms) > max(clipnorm, 1.0)


def test_a_train_step_equals_the_written_out_step():
    # Random weights (BatchNorm statistics and every scale included), 3 steps of the tiny
    # model with Adam, clipnorm 0.05 (most tensors are clipped), label smoothing and the
    # L2 term; the reference step uses tf.clip_by_norm and Keras's own Adam on a copy.
    cfg = config_lib.load_config("tiny", [
        "train.optimizer=adam", "train.base_learning_rate=0.01", "train.base_batch_size=4",
        "train.clipnorm=0.05", "train.label_smoothing=0.1", "train.l2_weight_decay=1e-3",
        "train.schedule=constant", "train.warmup_steps=0"])
    strategy = tf.distribute.get_strategy()
    keras.utils.set_random_seed(1)
    state = state_lib.make_training_state(cfg, strategy)
    randomize_weights(state.model, seed=2)
    reference = state_lib.build_model(cfg)
    for mine, theirs in zip(state.model.weights, reference.weights):
        theirs.assign(mine)
    initial = [v.numpy() for v in state.model.trainable_variables]
    train_step = step_lib.make_train_step(cfg, state.model, state.optimizer, strategy)

    adam = keras.optimizers.Adam(learning_rate=0.01, epsilon=cfg.train.epsilon)
    variables = reference.trainable_variables
    adam.build(variables)
    loss_object = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)

    @tf.function
    def reference_step(video, labels):
        with tf.GradientTape() as tape:
            logits = reference(video, training=True)
            cross_entropy = loss_object(tf.one_hot(labels, 10), logits)
            loss = cross_entropy + tf.add_n(reference.losses)
        grads = tape.gradient(loss, variables)
        norm = tf.linalg.global_norm(grads)
        adam.apply([tf.clip_by_norm(g, 0.05) for g in grads], variables)
        return loss, cross_entropy, norm

    rng = np.random.default_rng(3)
    for _ in range(3):
        video = tf.constant(rng.uniform(0, 1, (4, 8, 32, 32, 3)).astype(np.float32))
        labels = tf.constant(rng.integers(0, 10, 4), tf.int32)
        stats = train_step(video, labels)
        loss, cross_entropy, norm = reference_step(video, labels)
        np.testing.assert_allclose(float(stats["loss"]), float(loss), rtol=1e-5)
        np.testing.assert_allclose(float(stats["cross_entropy"]), float(cross_entropy), rtol=1e-5)
        np.testing.assert_allclose(float(stats["grad_norm"]), float(norm), rtol=1e-4)
        assert float(norm) > 0.05  # the clip acts
    for mine, theirs in zip(state.model.weights, reference.weights):
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-4, atol=1e-5,
                                   err_msg=mine.path)
    moved = sum(not np.allclose(v.numpy(), first)
                for v, first in zip(state.model.trainable_variables, initial))
    assert moved > len(initial) // 2
