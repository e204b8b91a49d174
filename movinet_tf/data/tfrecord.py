"""Kinetics-style TFRecords of `tf.train.SequenceExample`, as the Model Garden reads them.

Each record holds one video:

* context feature ``clip/label/index``: int64 `[1]`, the class index;
* sequence feature ``image/encoded``: one JPEG-encoded RGB frame per step.

Only the frames a clip samples are JPEG-decoded. `encode_sequence_example` and
`write_tfrecord` turn your own videos into this layout.
"""
import glob
import os

import numpy as np
import tensorflow as tf

LABEL_KEY = "clip/label/index"
IMAGE_KEY = "image/encoded"


def encode_sequence_example(frames, label, jpeg_quality=95):
    """Serialises one video into a SequenceExample.

    Args:
        frames: uint8 RGB `[T, H, W, 3]`, T >= 1.
        label: integer class index.
        jpeg_quality: JPEG quality of each frame, 1-100.

    Returns:
        The serialised proto, bytes.
    """
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or not len(frames):
        raise ValueError(f"frames must be uint8 [T, H, W, 3] with T >= 1; got {frames.dtype} "
                         f"{frames.shape}.")
    example = tf.train.SequenceExample()
    example.context.feature[LABEL_KEY].int64_list.value.append(int(label))
    feature_list = example.feature_lists.feature_list[IMAGE_KEY]
    for frame in frames:
        encoded = tf.io.encode_jpeg(frame, quality=jpeg_quality).numpy()
        feature_list.feature.add().bytes_list.value.append(encoded)
    return example.SerializeToString()


def write_tfrecord(path, videos):
    """Writes `(frames, label)` pairs to one TFRecord file, atomically (temp name + rename).

    Args:
        path: output file.
        videos: iterable of `(uint8 [T, H, W, 3], int label)`.
    """
    temp_path = f"{path}.tmp-{os.getpid()}"
    try:
        with tf.io.TFRecordWriter(temp_path) as writer:
            for frames, label in videos:
                writer.write(encode_sequence_example(frames, label))
        os.replace(temp_path, path)
    finally:
        if os.path.exists(temp_path):
            os.remove(temp_path)


def list_files(pattern):
    """Sorted files matching a glob; a clear error when none does."""
    files = sorted(glob.glob(pattern))
    if not files:
        raise FileNotFoundError(f"No TFRecord files match {pattern!r} (data.path).")
    return files


def parse_sequence_example(serialized):
    """One record -> `(encoded_frames, label)`: string `[N]` and int32 scalar."""
    context, sequence = tf.io.parse_single_sequence_example(
        serialized,
        context_features={LABEL_KEY: tf.io.FixedLenFeature([], tf.int64)},
        sequence_features={IMAGE_KEY: tf.io.FixedLenSequenceFeature([], tf.string)})
    return sequence[IMAGE_KEY], tf.cast(context[LABEL_KEY], tf.int32)


def decode_frames(encoded):
    """JPEG bytes `[T]` -> uint8 RGB `[T, H, W, 3]`."""
    return tf.map_fn(lambda x: tf.io.decode_jpeg(x, channels=3), encoded,
                     fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8))
