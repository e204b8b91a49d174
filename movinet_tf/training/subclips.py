"""Training a stream model on a long clip in sub-clips, with exact gradients.

A MoViNet stream model carries everything it needs from earlier frames in its
states (stream buffers, cumulative-pool means and frame counts). A clip of T
frames can therefore be fed as ``num_subclips`` consecutive sub-clips, passing
the states along, and the logits after the last sub-clip equal the whole-clip
logits. `subclip_loss_and_grads` uses this to train with activation memory of
one sub-clip (O(T / n)) instead of the whole clip (O(T)), while returning the
*exact* whole-clip gradients (not truncated back-propagation through time):

1. Forward sweep, no gradients: run sub-clips 0 .. n-2 and keep only the
   states at each boundary (a few MB for A0; the activations are freed at once).
2. Reverse sweep, k = n-1 down to 0: recompute sub-clip k from its stored input
   states under a `tf.GradientTape`, then ask the tape for the gradients of

   * sub-clip n-1: the loss (classifier head included);
   * sub-clip k < n-1: ``sum_s <states_out[s], g_out[s]>``, where ``g_out[s]``
     is d loss / d states_out[s], handed back by sub-clip k+1 (done with
     ``tape.gradient(..., output_gradients=g_out)``),

   with respect to the trainable variables (accumulated over sub-clips) and the
   float input states. The latter are d loss / d states_in of sub-clip k, which
   is d loss / d states_out of sub-clip k-1: that is how gradients cross a
   boundary. Integer states (``*_frame_count``) carry no gradient.

By the chain rule the accumulated variable gradients equal those of one tape
over the whole clip, up to float rounding. The cost is one extra forward pass
over the first n-1 sub-clips.

For n >= 2 both sweeps are the 2n - 1 steps of one `tf.while_loop` whose body
runs one sub-clip forward under a tape and, on reverse steps only (a
`tf.cond`), its backward pass. Inside a `tf.function` the body is traced once,
so the graph (and the process memory it takes) does not grow with n, and
``parallel_iterations=1`` keeps one sub-clip's activations alive at a time.

Training-mode choices, so that every ``num_subclips`` computes the same
function (n=1 included):

* BatchNorm uses its moving statistics and does not update them (frozen BN,
  the usual fine-tuning setting). Batch statistics cannot be split: a
  sub-clip's statistics differ from the clip's. Gamma and beta still train.
* Stochastic depth is off: its per-call random masks would differ between
  sub-clips and between the forward sweep and the recompute.
* Dropout in the classifier head stays on with ``training=True``: the head runs
  once per step (on the last sub-clip only, behind a `tf.cond`), so it draws one
  mask per step as in whole-clip training.

So with ``training=True`` the backbone runs as in inference and only the head's
dropout is random.

`SubclipGradients` runs the same sweeps from Python, each sub-clip a call of one
of two traced pieces; the trainer uses it on one replica, because the process
then holds about the graph of one whole-clip step instead of the loop's
(docs/subclip_training.md).
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


def _check_stream_model(model, caller):
    if not getattr(model, "is_stream", False):
        raise ValueError(
            f"{caller} needs a stream model (build_model(..., stream=True)): "
            f"{getattr(model, 'name', model)!r} has no states to carry between sub-clips.")


def _check_video(video):
    """`video` as a tensor; raises unless it is [B, T, H, W, 3]-shaped (rank 5)."""
    video = tf.convert_to_tensor(video)
    if video.shape.rank != 5:
        raise ValueError(f"video must be [B, T, H, W, 3], got shape {video.shape}.")
    return video


def _video_dims(video):
    """[B, T, H, W, C] with static ints where known, scalar tensors otherwise."""
    static = video.shape.as_list()
    dynamic = tf.shape(video)
    return [d if d is not None else dynamic[i] for i, d in enumerate(static)]


def subclip_loss_and_grads(model, video, labels, loss_fn, num_subclips, training=True,
                           variables=None, scale_loss=None):
    """Loss, logits and exact gradients of a stream model trained in sub-clips.

    Splits the clip in time into `num_subclips` consecutive sub-clips, carries
    the stream states across them, and back-propagates through the states (see
    the module docstring), so activation memory is that of one sub-clip while the
    gradients equal whole-clip gradients.

    Do not call this under an outer `tf.GradientTape`: it computes its own
    gradients, and an outer tape would record every sub-clip. It works eagerly
    and inside `tf.function`, where the sub-clips are the iterations of one
    `tf.while_loop` (one traced copy of a sub-clip, whatever n is).

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
    _check_stream_model(model, "subclip_loss_and_grads")
    _check_num_subclips(num_subclips)
    num_subclips = int(num_subclips)
    video = _check_video(video)
    shape = _video_dims(video)
    bounds = subclip_bounds(shape[1], num_subclips)
    if not isinstance(shape[1], int):
        tf.debugging.assert_greater_equal(
            shape[1], num_subclips,
            message=f"num_subclips={num_subclips} is more than the clip's frames")
    variables = list(model.trainable_variables if variables is None else variables)
    logging.log_first_n(logging.INFO, "Sub-clip training: %d sub-clips of %s frames.", 1,
                        num_subclips, [b - a for a, b in bounds])
    scale = scale_loss if scale_loss is not None else (lambda value: value)
    if num_subclips == 1:
        with tf.GradientTape() as tape:
            logits, _ = _forward(model, video, model.init_states(shape), training)
            loss = tf.cast(loss_fn(labels, logits), tf.float32)
            target = scale(loss)
        return loss, logits, tape.gradient(target, variables)
    return _loop_loss_and_grads(model, video, shape, labels, loss_fn, num_subclips, training,
                                variables, scale)


def _forward(model, clip, states, training):
    """Backbone (inference mode, see the module docstring) then head: (logits, states)."""
    features, states = model.backbone(clip, states=states, training=False)
    return model.classifier_head(features, training=training), states


def _loop_loss_and_grads(model, video, shape, labels, loss_fn, num_subclips, training,
                         variables, scale):
    """`subclip_loss_and_grads` for n >= 2: one `tf.while_loop` over 2n - 1 steps.

    Steps 0 .. n-2 are the forward sweep (sub-clip k = step), steps n-1 .. 2n-2
    the reverse sweep (k = 2n-2 - step). Every step runs sub-clip k's forward
    pass under a tape; only reverse steps take the `tf.cond` branch that holds
    the backward pass. The loop body is traced once, so a `tf.function` holds a
    single copy of a sub-clip's forward and backward pass, about the graph of
    n = 1, whatever n is. ``parallel_iterations=1`` runs the steps one after the
    other, so only one sub-clip's activations are alive at a time.
    """
    head = model.classifier_head
    init = model.init_states(shape)
    names = list(init)
    float_names = [name for name in names if init[name].dtype.is_floating]
    spec = {name: init[name].shape for name in names}
    base, extra = shape[1] // num_subclips, shape[1] % num_subclips
    logits_shape = [shape[0], head.num_classes]
    last = num_subclips - 1

    def subclip(k):
        # The same bounds as `subclip_bounds`, with k a scalar tensor.
        start = k * base + tf.minimum(k, extra)
        stop = start + base + tf.cast(k < extra, tf.int32)
        clip = video[:, start:stop]
        if isinstance(base, int) and extra == 0:  # Equal sizes: keep T static.
            clip = tf.ensure_shape(clip, [None, base] + [None] * 3)
        return clip

    # The input states of every sub-clip: zeros for sub-clip 0, the others
    # written by the forward sweep.
    stored = {name: tf.TensorArray(init[name].dtype, size=num_subclips, element_shape=spec[name],
                                   clear_after_read=False).write(0, init[name])
              for name in names}
    none_at = [True] * len(variables)  # Where every sub-clip's gradient is None.

    def body(step, stored, state_grads, grads, loss, logits):
        backward = step >= last
        k = tf.where(backward, 2 * last - step, step)
        is_last = tf.equal(step, last)
        states_in = {name: stored[name].read(k) for name in names}
        tape, watched, states_out, step_loss, target, step_logits = _taped_subclip(
            model, subclip(k), states_in, float_names, labels, loss_fn, training, scale,
            is_last, logits_shape)

        def backward_pass():
            variable_grads, new_state_grads = _backward_subclip(
                tape, target, states_out, watched, float_names, variables, state_grads)
            for i, g in enumerate(variable_grads):
                none_at[i] = none_at[i] and g is None
            return new_state_grads, [total if g is None else total + tf.cast(g, total.dtype)
                                     for total, g in zip(grads, variable_grads)]

        def forward_only():
            return state_grads, grads

        state_grads, grads = tf.cond(backward, backward_pass, forward_only)
        # A forward step stores its output states as the next sub-clip's input.
        # (The reverse sweep only reads: writing there again would be an error.)
        stored = tf.cond(
            backward, lambda: stored,
            lambda: {name: stored[name].write(k + 1, tf.stop_gradient(
                tf.ensure_shape(states_out[name], spec[name]))) for name in names})
        return (step + 1, stored, state_grads, grads,
                tf.where(is_last, step_loss, loss), tf.where(is_last, step_logits, logits))

    _, _, _, grads, loss, logits = tf.while_loop(
        lambda step, *_: step < 2 * num_subclips - 1, body,
        (tf.constant(0), stored,
         {name: tf.zeros(spec[name], init[name].dtype) for name in float_names},
         [tf.zeros(v.shape, v.dtype) for v in variables],
         tf.zeros([], tf.float32), tf.zeros(logits_shape, tf.float32)),
        parallel_iterations=1)
    return loss, logits, [None if none else g for none, g in zip(none_at, grads)]


def _taped_subclip(model, clip, states_in, float_names, labels, loss_fn, training, scale,
                   is_last, logits_shape):
    """A sub-clip's forward pass under a tape; the head and the loss on the last one only.

    Returns ``(tape, watched, states_out, loss, target, logits)``: the watched float
    input states, the loss (0 unless `is_last`), its scaled form and the logits
    (zeros of `logits_shape` unless `is_last`). The head sits behind a `tf.cond`, so
    dropout draws one mask per step.
    """
    watched = [states_in[name] for name in float_names]
    with tf.GradientTape() as tape:
        tape.watch(watched)
        features, states_out = model.backbone(clip, states=states_in, training=False)

        def with_loss():
            logits = model.classifier_head(features, training=training)
            loss = tf.cast(loss_fn(labels, logits), tf.float32)
            return loss, tf.cast(scale(loss), tf.float32), tf.cast(logits, tf.float32)

        def without_loss():
            return (tf.zeros([], tf.float32), tf.zeros([], tf.float32),
                    tf.zeros(logits_shape, tf.float32))

        loss, target, logits = tf.cond(is_last, with_loss, without_loss)
    return tape, watched, states_out, loss, target, logits


def _backward_subclip(tape, target, states_out, watched, float_names, variables, state_grads):
    """Back-propagates one sub-clip: d target / d theta + sum_s <d states_out[s] / d theta,
    state_grads[s]>, and the gradients of its float input states.

    `watched` holds the float input states in the order of `float_names` (a loop or a
    function may hand the dicts back with their keys in another order).

    Returns ``(variable_grads, new_state_grads)``: a list aligned with `variables` (None
    where a variable gets no gradient) and a dict of the input states' gradients.
    """
    grads = tape.gradient(
        [target] + [states_out[name] for name in float_names], list(variables) + watched,
        output_gradients=[tf.ones_like(target)] + [state_grads[name] for name in float_names])
    new_state_grads = {name: tf.zeros_like(state_grads[name]) if g is None
                       else tf.cast(g, state_grads[name].dtype)
                       for name, g in zip(float_names, grads[len(variables):])}
    return grads[:len(variables)], new_state_grads


class SubclipGradients:
    """`subclip_loss_and_grads` for eager callers: a Python loop over traced pieces.

    The same two sweeps and the same exact gradients, but each sub-clip is a call of
    one of two `tf.function`s: ``forward`` (a sub-clip's backbone, no tape) and
    ``backward`` (a sub-clip recomputed under a tape, its gradients added to running
    sums; the head and the loss run on the last sub-clip only, behind a `tf.cond`, so
    dropout draws one mask per step). Python keeps the boundary states between the
    calls. Unlike the `tf.while_loop` of `subclip_loss_and_grads` inside a
    `tf.function`, no loop, TensorArray or cond of the backward pass is traced, so the
    process holds about the graph of one whole-clip step, whatever n is. On one
    64x172x172 clip of A0-Stream the peak RSS growth is 0.38x (n = 4) and 0.26x (n = 8)
    that of n = 1, against 0.45x and 0.34x for the loop (docs/subclip_training.md).

    The running sums live in non-trainable variables of this object (one per
    differentiated variable, created on the first call), so a backward call takes and
    returns only the states and their gradients: passing the 265 gradients of A0 in
    and out of every call cost more than the arithmetic.

    The trainer uses it for ``train.subclips > 1`` on one replica. Call it eagerly;
    inside a `tf.function` use `subclip_loss_and_grads`.

    Args:
        model, loss_fn, num_subclips, training, variables, scale_loss: as in
            `subclip_loss_and_grads`.
    """

    def __init__(self, model, loss_fn, num_subclips, training=True, variables=None,
                 scale_loss=None):
        _check_stream_model(model, "SubclipGradients")
        _check_num_subclips(num_subclips)
        self.model = model
        self.loss_fn = loss_fn
        self.num_subclips = int(num_subclips)
        self.training = training
        self.variables = list(model.trainable_variables if variables is None else variables)
        self.scale = scale_loss if scale_loss is not None else (lambda value: value)
        self._none_at = None  # Where a variable gets no gradient (found when tracing).
        self._sums = None  # The running gradient sums (variables, made on the first call).
        self._whole = tf.function(self._whole_fn, reduce_retracing=True)
        self._forward = tf.function(self._forward_fn, reduce_retracing=True)
        self._backward = tf.function(self._backward_fn, reduce_retracing=True)
        self._reset = tf.function(self._reset_fn)
        self._read = tf.function(self._read_fn)

    def tracing_count(self):
        """How many times the pieces were traced (one each per input signature)."""
        return sum(f.experimental_get_tracing_count()
                   for f in (self._whole, self._forward, self._backward, self._reset,
                             self._read))

    def _whole_fn(self, video, labels):
        return subclip_loss_and_grads(self.model, video, labels, self.loss_fn, 1,
                                      training=self.training, variables=self.variables,
                                      scale_loss=self.scale)

    def _forward_fn(self, clip, states):
        _, states = self.model.backbone(clip, states=states, training=False)
        return states

    def _backward_fn(self, clip, states_in, state_grads, labels, is_last):
        float_names = sorted(state_grads)
        logits_shape = [tf.shape(clip)[0], self.model.classifier_head.num_classes]
        tape, watched, states_out, loss, target, logits = _taped_subclip(
            self.model, clip, states_in, float_names, labels, self.loss_fn,
            self.training, self.scale, is_last, logits_shape)
        variable_grads, new_state_grads = _backward_subclip(
            tape, target, states_out, watched, float_names, self.variables, state_grads)
        self._none_at = [g is None for g in variable_grads]
        for total, g in zip(self._sums, variable_grads):
            if g is not None:
                total.assign_add(tf.cast(g, total.dtype))
        return loss, logits, new_state_grads

    def _reset_fn(self):
        for total in self._sums:
            total.assign(tf.zeros_like(total))

    def _read_fn(self):
        return [tf.identity(total) for total in self._sums]

    def __call__(self, video, labels):
        """(loss, logits, grads) of `video` [B, T, H, W, 3], as `subclip_loss_and_grads`."""
        if not tf.executing_eagerly():
            raise RuntimeError("SubclipGradients runs its sub-clips from Python: call it "
                               "eagerly, or use subclip_loss_and_grads inside a tf.function.")
        video = _check_video(video)
        if self.num_subclips == 1:
            return self._whole(video, labels)
        shape = video.shape.as_list()
        bounds = subclip_bounds(shape[1], self.num_subclips)
        logging.log_first_n(logging.INFO, "Sub-clip training: %d sub-clips of %s frames.", 1,
                            self.num_subclips, [b - a for a, b in bounds])
        if self._sums is None:
            self._sums = [tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False,
                                      name="subclip_grad_sum") for v in self.variables]
        self._reset()
        init = self.model.init_states(shape)
        # Forward sweep: the input states of every sub-clip (the activations are freed).
        stored = [init]
        for start, stop in bounds[:-1]:
            stored.append(self._forward(video[:, start:stop], stored[-1]))
        # Reverse sweep, the last sub-clip first (it alone computes the loss). The
        # initial states are zeros, so their float ones start the state gradients.
        state_grads = {name: value for name, value in init.items() if value.dtype.is_floating}
        loss = logits = None
        for k in reversed(range(self.num_subclips)):
            start, stop = bounds[k]
            is_last = k == self.num_subclips - 1
            step_loss, step_logits, state_grads = self._backward(
                video[:, start:stop], stored[k], state_grads, labels, tf.constant(is_last))
            stored[k] = None
            if is_last:
                loss, logits = step_loss, step_logits
        return loss, logits, [None if none else g
                              for none, g in zip(self._none_at, self._read())]
