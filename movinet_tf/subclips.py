"""Training a stream model on a long clip in sub-clips, with exact gradients.

A MoViNet stream model carries everything it needs from earlier frames in its
states (stream buffers, cumulative-pool means and frame counts). A clip of T
frames can therefore be fed as ``num_subclips`` consecutive sub-clips, passing
the states along, and the logits after the last sub-clip equal the whole-clip
logits. `subclip_loss_and_grads` uses this to train with activation memory of
one sub-clip (O(T / n)) instead of the whole clip (O(T)), while returning the
*exact* whole-clip gradients (not truncated back-propagation through time):

1. Forward sweep, no tape: run sub-clips 0 .. n-2 and keep only the states at
   each boundary (a few MB for A0; the activations are freed at once).
2. Reverse sweep, one tape per sub-clip, k = n-1 down to 0: recompute sub-clip
   k from its stored input states under a `tf.GradientTape`, then ask the tape
   for the gradients of

   * sub-clip n-1: the loss (classifier head included);
   * sub-clip k < n-1: ``sum_s <states_out[s], g_out[s]>``, where ``g_out[s]``
     is d loss / d states_out[s], handed back by sub-clip k+1 (done with
     ``tape.gradient(..., output_gradients=g_out)``),

   with respect to the trainable variables (accumulated over sub-clips) and the
   float input states. The latter are d loss / d states_in of sub-clip k, which
   is d loss / d states_out of sub-clip k-1: that is how gradients cross a
   boundary. Integer states (``*_frame_count``) carry no gradient. Sub-clip 0
   starts from zero states, so its input-state gradient is not computed.

By the chain rule the accumulated variable gradients equal those of one tape
over the whole clip, up to float rounding. The cost is one extra forward pass
over the first n-1 sub-clips.

Training-mode choices, so that every ``num_subclips`` computes the same
function (n=1 included):

* BatchNorm uses its moving statistics and does not update them (frozen BN,
  the usual fine-tuning setting). Batch statistics cannot be split: a
  sub-clip's statistics differ from the clip's. Gamma and beta still train.
* Stochastic depth is off: its per-call random masks would differ between
  sub-clips and between the forward sweep and the recompute.
* Dropout in the classifier head stays on with ``training=True``: the head runs
  once per step (on the last sub-clip only), so it draws one mask per step as in
  whole-clip training.

So with ``training=True`` the backbone runs as in inference and only the head's
dropout is random. See docs/subclip_training.md.
"""
import numbers

from absl import logging
import tensorflow as tf


def subclip_bounds(num_frames, num_subclips):
    """Where each sub-clip starts and stops when T frames are split into n parts.

    Sizes differ by at most one frame; the first ``T % n`` sub-clips get the
    extra frame (as `numpy.array_split`).

    Args:
        num_frames: T, an int or a scalar int tensor.
        num_subclips: n, a Python int >= 1 (and <= T when T is an int).

    Returns:
        A list of n (start, stop) pairs (ints, or scalar tensors when
        `num_frames` is a tensor).

    Raises:
        TypeError: if `num_subclips` is not an int.
        ValueError: if `num_subclips` < 1 or > `num_frames`.
    """
    _check_num_subclips(num_subclips)
    num_subclips = int(num_subclips)
    if isinstance(num_frames, int):
        if num_subclips > num_frames:
            raise ValueError(
                f"num_subclips={num_subclips} is more than the clip's {num_frames} frames; "
                "each sub-clip needs at least one frame.")
    base, extra = num_frames // num_subclips, num_frames % num_subclips
    at_most = min if isinstance(num_frames, int) else tf.minimum
    # Sub-clip k starts after k sub-clips of `base` frames, min(k, extra) of them
    # one frame longer.
    edges = [k * base + at_most(k, extra) for k in range(num_subclips + 1)]
    return list(zip(edges[:-1], edges[1:]))


def _check_num_subclips(num_subclips):
    if isinstance(num_subclips, bool) or not isinstance(num_subclips, numbers.Integral):
        raise TypeError(
            f"num_subclips must be a Python int >= 1, got {num_subclips!r} "
            f"({type(num_subclips).__name__}).")
    if num_subclips < 1:
        raise ValueError(f"num_subclips must be >= 1, got {num_subclips}.")


def _video_dims(video):
    """[B, T, H, W, C] with static ints where known, scalar tensors otherwise."""
    static = video.shape.as_list()
    dynamic = tf.shape(video)
    return [d if d is not None else dynamic[i] for i, d in enumerate(static)]


def _after(tensors, clip, states):
    """`clip` and `states`, made to wait for `tensors` inside a graph.

    A graph runs every op whose inputs are ready, so without this, the parts of
    every sub-clip that do not depend on the states (the stem, the spatial
    convolutions) could run at once, holding the activations of many sub-clips.
    Eagerly, ops already run in order and this changes nothing.
    """
    if tf.executing_eagerly():
        return clip, states
    with tf.control_dependencies(list(tensors)):
        return tf.identity(clip), {name: tf.identity(v) for name, v in states.items()}


def _add_grads(total, new):
    return [a if b is None else (b if a is None else a + b) for a, b in zip(total, new)]


def subclip_loss_and_grads(model, video, labels, loss_fn, num_subclips, training=True,
                           variables=None, scale_loss=None):
    """Loss, logits and exact gradients of a stream model trained in sub-clips.

    Splits the clip in time into `num_subclips` consecutive sub-clips, carries
    the stream states across them, and back-propagates through the states (see
    the module docstring), so activation memory is that of one sub-clip while the
    gradients equal whole-clip gradients.

    Do not call this under an outer `tf.GradientTape`: it computes its own
    gradients, and an outer tape would record every sub-clip. It works eagerly
    and inside `tf.function` (the reverse sweep is ordered with control
    dependencies so that only one sub-clip's activations are alive at a time).

    Args:
        model: a stream `MovinetClassifier` (``build_model(..., stream=True)``).
        video: float video [B, T, H, W, 3] in [0, 1].
        labels: anything `loss_fn` takes, e.g. int labels [B].
        loss_fn: ``loss_fn(labels, logits) -> scalar loss``; logits are
            float32 [B, num_classes].
        num_subclips: n, a Python int, 1 <= n <= T. T need not be divisible by
            n: sizes then differ by one frame (see `subclip_bounds`).
        training: True: the classifier head's dropout is active. The backbone
            always runs with moving BatchNorm statistics and no stochastic
            depth, whatever `training` is, so that every n is the same function.
        variables: the variables to differentiate; default
            `model.trainable_variables`.
        scale_loss: optional ``fn(loss) -> scaled loss`` (e.g.
            ``optimizer.scale_loss`` under mixed precision); the gradients are
            those of the scaled loss, the returned loss is unscaled.

    Returns:
        (loss, logits, grads): the scalar loss, the logits [B, num_classes] after
        the last sub-clip (equal to the whole-clip logits), and a list of
        gradients aligned with `variables` (None for a variable the loss does
        not depend on).

    Raises:
        ValueError: for a model that cannot stream, a video that is not
            [B, T, H, W, 3], or `num_subclips` < 1 or > T.
        TypeError: if `num_subclips` is not an int.
    """
    if not getattr(model, "is_stream", False):
        raise ValueError(
            "subclip_loss_and_grads needs a stream model (build_model(..., stream=True)): "
            f"{getattr(model, 'name', model)!r} has no states to carry between sub-clips.")
    _check_num_subclips(num_subclips)
    num_subclips = int(num_subclips)
    video = tf.convert_to_tensor(video)
    if video.shape.rank != 5:
        raise ValueError(f"video must be [B, T, H, W, 3], got shape {video.shape}.")
    shape = _video_dims(video)
    bounds = subclip_bounds(shape[1], num_subclips)
    if not isinstance(shape[1], int):
        tf.debugging.assert_greater_equal(
            shape[1], num_subclips,
            message=f"num_subclips={num_subclips} is more than the clip's frames")
    variables = list(model.trainable_variables if variables is None else variables)
    backbone, head = model.backbone, model.classifier_head
    logging.log_first_n(logging.INFO, "Sub-clip training: %d sub-clips of %s frames.", 1,
                        num_subclips, [b - a for a, b in bounds])

    # Forward sweep without a tape: keep only the states at each boundary.
    boundary_states = [model.init_states(shape)]
    for start, stop in bounds[:-1]:
        clip, states = _after(boundary_states[-1].values(), video[:, start:stop],
                              boundary_states[-1])
        _, states = backbone(clip, states=states, training=False)
        boundary_states.append({name: tf.stop_gradient(v) for name, v in states.items()})

    # Reverse sweep: recompute each sub-clip under a tape, last one first.
    grads = [None] * len(variables)
    state_grads = None  # d loss / d (output states of the sub-clip being processed).
    loss = logits = None
    for k in reversed(range(num_subclips)):
        start, stop = bounds[k]
        # Recompute sub-clip k only once sub-clip k+1's backward pass is done (the
        # last one: once the forward sweep is done).
        clip, states_in = _after(
            boundary_states[k].values() if state_grads is None else state_grads.values(),
            video[:, start:stop], boundary_states[k])
        float_names = [name for name, v in states_in.items() if v.dtype.is_floating]
        watched = [states_in[name] for name in float_names] if k > 0 else []
        with tf.GradientTape() as tape:
            tape.watch(watched)
            features, states_out = backbone(clip, states=states_in, training=False)
            if k == num_subclips - 1:
                logits = head(features, training=training)
                loss = loss_fn(labels, logits)
                target = scale_loss(loss) if scale_loss is not None else loss
        if k == num_subclips - 1:
            all_grads = tape.gradient(target, variables + watched)
        else:
            names = sorted(state_grads)
            all_grads = tape.gradient([states_out[name] for name in names], variables + watched,
                                      output_gradients=[state_grads[name] for name in names])
        grads = _add_grads(grads, all_grads[:len(variables)])
        state_grads = {name: g for name, g in zip(float_names, all_grads[len(variables):])
                       if g is not None}
        del tape
    return loss, logits, grads
