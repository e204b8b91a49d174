"""The single-frame export graph of a temporal ensemble.

One frame runs **one** member: frame t goes to member ``t mod N``, chosen by a
`tf.cond` on the ensemble's frame count (a TFLite IF op per member), so the
per-frame cost is one member's. The other members' states pass through
untouched. The logits are the average of every member's latest logits (of the
members that have seen a frame), as `movinet_tf.ensemble.TemporalEnsemble`
computes them in stream mode.

The exported file also carries one signature per member,
``frame_mod_<i>`` (`frame_signature_name`), that runs member i with no control
flow and reads/writes only the states it needs (`member_state_names`): a runtime
that calls ``frame_mod_<t mod N>`` for frame t pays one member per frame and
copies one member's states (the manifest's ``frame_signatures`` lists them).

`EnsembleFrameGraph` has the interface of `FrameGraph` (state names and shapes
in the "published" and "frame" layouts, ``__call__``, ``signature_function``),
so `export_tflite` and `compare_with_float` take either. The state names are
the Keras ensemble's: ``ensemble_frame_count``, and per member
``member<i>_logits`` plus its own states under the ``member<i>_`` prefix.
"""
import numpy as np
import tensorflow as tf

from movinet_tf.ensemble import FRAME_COUNT_NAME, TemporalEnsemble, member_prefix
from movinet_tf.export_lib.frame_graph import FrameGraph, check_layout


class EnsembleFrameGraph:
    """Inference-only, one-frame graph of a `TemporalEnsemble` of stream models.

    Args:
        ensemble: a `TemporalEnsemble` whose members are stream models.
        image_size: frame side (int) or (H, W).
    """

    def __init__(self, ensemble, image_size):
        if not getattr(ensemble, "is_stream", False):
            raise ValueError("EnsembleFrameGraph needs an ensemble of stream models.")
        self.members = [FrameGraph(member, image_size) for member in ensemble.members]
        self.num_members = len(self.members)
        self.num_classes = ensemble.num_classes
        self.image_size = self.members[0].image_size
        self.video_shape = self.members[0].video_shape

    @property
    def state_names(self):
        names = [FRAME_COUNT_NAME]
        for index, member in enumerate(self.members):
            prefix = member_prefix(index)
            names.append(prefix + "logits")
            names.extend(prefix + name for name in member.state_names)
        return names

    def state_shapes(self, layout="published"):
        layout = check_layout(layout)
        shapes = {FRAME_COUNT_NAME: ((1,), tf.int32)}
        for index, member in enumerate(self.members):
            prefix = member_prefix(index)
            shapes[prefix + "logits"] = ((1, self.num_classes), tf.float32)
            for name, value in member.state_shapes(layout).items():
                shapes[prefix + name] = value
        return shapes

    def image_shape(self, layout="published"):
        return self.members[0].image_shape(layout)

    def init_states(self, layout="frame"):
        return {name: np.zeros(shape, dtype.as_numpy_dtype)
                for name, (shape, dtype) in self.state_shapes(layout).items()}

    def __call__(self, image, states):
        count = tf.reshape(states[FRAME_COUNT_NAME], [])
        turn = tf.math.floormod(count, self.num_members)
        new_states = {FRAME_COUNT_NAME: states[FRAME_COUNT_NAME] + 1}
        latest = []
        for index, member in enumerate(self.members):
            prefix = member_prefix(index)
            names = member.state_names
            own = [states[prefix + name] for name in names]
            previous = states[prefix + "logits"]

            def run(member=member, names=names, own=own):
                logits, out = member(image, dict(zip(names, own)))
                return [logits] + [out[name] for name in names]

            def keep(previous=previous, own=own):
                return [tf.identity(previous)] + [tf.identity(value) for value in own]

            results = tf.cond(tf.equal(turn, index), run, keep)
            new_states[prefix + "logits"] = results[0]
            new_states.update({prefix + name: value for name, value in zip(names, results[1:])})
            latest.append(results[0])
        return self._average(count, latest), new_states

    def _average(self, count, latest):
        """Mean of the latest logits of the members that have seen a frame (count + 1 frames)."""
        seen = count + 1
        weights = [tf.cast(seen > index, tf.float32) for index in range(self.num_members)]
        total = tf.add_n([w * logits for w, logits in zip(weights, latest)])
        return total / tf.maximum(tf.add_n(weights), 1.0)

    def member_state_names(self, index, outputs=False):
        """The states signature `frame_signature_name(index)` reads (or, with
        `outputs`, writes), under the ensemble's state names.

        It reads the ensemble frame count, every member's latest logits (for the
        average) and member `index`'s own states; it writes the frame count,
        member `index`'s logits and its own states.
        """
        prefix = member_prefix(index)
        members = [index] if outputs else range(self.num_members)
        return ([FRAME_COUNT_NAME] + [member_prefix(i) + "logits" for i in members]
                + [prefix + name for name in self.members[index].state_names])

    def member_step(self, index, image, states):
        """Frame t with t mod N == `index`: runs member `index` only, no control flow.

        Args:
            image: [1, H, W, 3].
            states: dict with (at least) `member_state_names(index)`.

        Returns:
            (logits [1, num_classes], the new states named by
            ``member_state_names(index, outputs=True)``), equal to `__call__` on
            such a frame.
        """
        prefix = member_prefix(index)
        member = self.members[index]
        count = tf.reshape(states[FRAME_COUNT_NAME], [])
        logits, out = member(image, {name: states[prefix + name] for name in member.state_names})
        latest = [logits if i == index else states[member_prefix(i) + "logits"]
                  for i in range(self.num_members)]
        new_states = {FRAME_COUNT_NAME: states[FRAME_COUNT_NAME] + 1, prefix + "logits": logits}
        new_states.update({prefix + name: value for name, value in out.items()})
        return self._average(count, latest), new_states

    def member_signature_function(self, index, layout="published"):
        """A tf.function for signature `frame_signature_name(index)`: `member_step` with
        ``image`` + `member_state_names(index)` in, ``logits`` +
        ``member_state_names(index, outputs=True)`` out."""
        layout = check_layout(layout)
        names = self.member_state_names(index)
        shapes = self.state_shapes(layout)
        specs = [tf.TensorSpec(self.image_shape(layout), tf.float32, name="image")]
        specs += [tf.TensorSpec(shapes[name][0], shapes[name][1], name=name) for name in names]

        def serve(image, *state_values):
            frame = tf.reshape(image, self.image_shape("frame")) if layout == "published" else image
            logits, new_states = self.member_step(index, frame, dict(zip(names, state_values)))
            return {"logits": logits, **new_states}

        return tf.function(serve, input_signature=specs, autograph=False)

    def signature_function(self, layout="published"):
        """As `FrameGraph.signature_function`: ``image`` + states in, logits + states out."""
        layout = check_layout(layout)
        names = self.state_names
        shapes = self.state_shapes(layout)
        specs = [tf.TensorSpec(self.image_shape(layout), tf.float32, name="image")]
        specs += [tf.TensorSpec(shapes[name][0], shapes[name][1], name=name) for name in names]

        def serve(image, *state_values):
            frame = tf.reshape(image, self.image_shape("frame")) if layout == "published" else image
            logits, new_states = self(frame, dict(zip(names, state_values)))
            return {"logits": logits, **{name: new_states[name] for name in names}}

        return tf.function(serve, input_signature=specs, autograph=False)


def frame_signature_name(index):
    """Name of the ensemble file's signature that serves frames t with t mod N == index."""
    return f"frame_mod_{index}"


def make_frame_graph(model, image_size):
    """`EnsembleFrameGraph` for a `TemporalEnsemble`, else `FrameGraph`."""
    if isinstance(model, TemporalEnsemble):
        return EnsembleFrameGraph(model, image_size)
    return FrameGraph(model, image_size)
