"""Temporal ensembles: N models at 1/N of the frame rate, logits averaged.

The paper's third idea. Member i sees frames i, i + N, i + 2N, ... of the video:
the same temporal span at 1/N of the frame rate, so the ensemble costs what one
model at the full frame rate costs. The members are trained independently; at
inference their logits are averaged, with equal weights, before any softmax.

`TemporalEnsemble` has the calling conventions of one model:

* clip mode: ``logits = ensemble(video)`` splits the frames by offset and
  averages the members' logits;
* stream mode: ``logits, states = ensemble({**states, "image": frames})`` sends
  incoming frame t to member ``t mod N`` and returns the average of the members'
  latest logits (of those that have seen a frame). Each member's states are kept
  under its own prefix (``member0_state_block1_layer0_stream_buffer``), next to
  ``ensemble_frame_count`` and each member's latest ``member{i}_logits``.

After the last frame of a clip, streaming gives exactly the clip-mode logits.
Members may have different architectures (e.g. "A6" = A4 + A5) as long as they
predict the same classes.
"""
import keras
import tensorflow as tf

from movinet_tf.layers import states as states_lib
from movinet_tf.layers.conv import dims

FRAME_COUNT_NAME = "ensemble_frame_count"


def member_prefix(index):
    return f"member{index}_"


@keras.saving.register_keras_serializable(package="movinet_tf")
class TemporalEnsemble(keras.Model):
    """Averages the logits of N members, each seeing every N-th frame.

    Args:
        members: list of `MovinetClassifier`s with the same number of classes.
            For stream mode they must be stream (causal) models.

    Call arguments:
        inputs: a video [B, T, H, W, 3], or {'image': frames, **states}.

    Returns:
        logits [B, num_classes], or (logits, new_states) in stream mode.
    """

    def __init__(self, members, **kwargs):
        super().__init__(**kwargs)
        members = list(members)
        if len(members) < 2:
            raise ValueError(f"A temporal ensemble needs at least 2 members, got {len(members)}.")
        classes = {m.num_classes for m in members}
        if len(classes) != 1:
            raise ValueError(f"Ensemble members predict different numbers of classes: {classes}.")
        self.members = members
        self.num_members = len(members)
        self.num_classes = members[0].num_classes
        self.build()

    @property
    def is_stream(self):
        return all(m.is_stream for m in self.members)

    @property
    def causal(self):
        return self.is_stream

    @property
    def input_video_shape(self):
        """[T, H, W, 3] of the full-rate video (T unknown: members split it)."""
        _, height, width, channels = self.members[0].input_video_shape
        return (None, height, width, channels)

    def build(self, input_shape=None):
        for member in self.members:
            if not member.built:
                member.build()
        self.built = True

    def _member_frames(self, video, index, offset=0):
        """The frames of `video` that go to member `index`, when the first is frame `offset`."""
        return video[:, (index - offset) % self.num_members::self.num_members]

    def call(self, inputs, training=None):
        if isinstance(inputs, dict):
            return self._stream_call(inputs, training)
        logits = [member(self._member_frames(inputs, i), training=training)
                  for i, member in enumerate(self.members)]
        return tf.add_n(logits) / float(self.num_members)

    def _stream_call(self, inputs, training):
        if "image" not in inputs:
            raise ValueError("A stream call takes {'image': frames, **states}; 'image' is missing.")
        if not self.is_stream:
            raise ValueError("Streaming needs stream (causal) members; build them with stream=True.")
        video = inputs["image"]
        states = {k: v for k, v in inputs.items() if k != "image"}
        specs = self.state_specs(video.shape)
        states_lib.check_states(states, specs, "ensemble stream call")
        seen = tf.reshape(states[FRAME_COUNT_NAME], [])
        num_frames = dims(video)[1]
        new_states = {FRAME_COUNT_NAME: states[FRAME_COUNT_NAME] + num_frames}
        latest = []
        for i, member in enumerate(self.members):
            prefix = member_prefix(i)
            own = {k[len(prefix):]: v for k, v in states.items() if k.startswith(prefix)}
            previous_logits = own.pop("logits")
            first = tf.math.floormod(i - seen, self.num_members)
            if isinstance(num_frames, int) and num_frames == 1:
                frames = video  # Runs only when this member's turn has come (first == 0).
            else:
                frames = tf.gather(video, tf.range(first, num_frames, self.num_members), axis=1)

            def run(member=member, frames=frames, own=own):
                logits, out = member({**own, "image": frames}, training=training)
                return logits, out

            def keep(own=own, previous_logits=previous_logits):
                return previous_logits, dict(own)

            if isinstance(num_frames, int) and num_frames == 1:
                logits, out = tf.cond(tf.equal(first, 0), run, keep)
            else:
                logits, out = tf.cond(tf.shape(frames)[1] > 0, run, keep)
            new_states[prefix + "logits"] = logits
            new_states.update({prefix + k: v for k, v in out.items()})
            latest.append(logits)
        # Average over the members that have seen at least one frame.
        total = tf.reshape(new_states[FRAME_COUNT_NAME], [])
        weights = [tf.cast(total > i, tf.float32) for i in range(self.num_members)]
        summed = tf.add_n([w * l for w, l in zip(weights, latest)])
        return summed / tf.maximum(tf.add_n(weights), 1.0), new_states

    def state_specs(self, video_shape=None):
        """All states: each member's under its prefix, its latest logits, the frame count."""
        specs = {FRAME_COUNT_NAME: tf.TensorSpec((1,), tf.int32, name=FRAME_COUNT_NAME)}
        for i, member in enumerate(self.members):
            prefix = member_prefix(i)
            shape = video_shape if video_shape is not None else (1,) + member.input_video_shape
            batch = list(shape)[0] if not isinstance(shape, tf.TensorShape) else shape[0]
            specs[prefix + "logits"] = tf.TensorSpec(
                (batch if isinstance(batch, int) else None, self.num_classes), tf.float32,
                name=prefix + "logits")
            for name, spec in member.state_specs(shape).items():
                specs[prefix + name] = tf.TensorSpec(spec.shape, spec.dtype, name=prefix + name)
        return specs

    def init_states(self, video_shape=None):
        """Zero states for a video shape [B, T, H, W, 3]."""
        states = {FRAME_COUNT_NAME: tf.zeros([1], tf.int32)}
        for i, member in enumerate(self.members):
            prefix = member_prefix(i)
            member_states = member.init_states(video_shape)
            batch = video_shape[0] if video_shape is not None else 1
            states[prefix + "logits"] = tf.zeros([batch, self.num_classes], tf.float32)
            states.update({prefix + k: v for k, v in member_states.items()})
        return states

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable,
                "members": [keras.saving.serialize_keras_object(m) for m in self.members]}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        members = [keras.saving.deserialize_keras_object(m) for m in config.pop("members")]
        return cls(members, **config)
