"""Shared, session-scoped models and exports for the export tests (conversion is the slow part)."""
import pytest

import movinet_tf
from helpers import keras_step, randomize_weights, random_video, stream_per_frame
from movinet_tf import export_lib

IMAGE_SIZE = 32
NUM_CLASSES = 5
NUM_FRAMES = 8
LABELS = ["walk", "run", "jump", "sit", "wave"]


@pytest.fixture(scope="session")
def a0_stream():
    """A0-stream at 32x32, 5 classes, random weights (no zero/identity branches)."""
    model = movinet_tf.build_model("a0", stream=True, num_classes=NUM_CLASSES)
    return randomize_weights(model, seed=3)


@pytest.fixture(scope="session")
def test_clips():
    """Held-out float clips [T, 32, 32, 3] (not used for calibration)."""
    return [random_video([1, NUM_FRAMES, IMAGE_SIZE, IMAGE_SIZE, 3], seed=100 + i)[0]
            for i in range(3)]


@pytest.fixture(scope="session")
def keras_stream_logits(a0_stream, test_clips):
    """Keras stream-call logits after each frame: list of [T, N] per clip."""
    step = keras_step(a0_stream)
    return [stream_per_frame(step, clip, a0_stream.init_states([1, 1, *clip.shape[1:]]))[0]
            for clip in test_clips]


@pytest.fixture(scope="session")
def exports(a0_stream, tmp_path_factory):
    """Lazily exports a0_stream once per (quantize, state layout); returns a getter."""
    cache = {}
    root = tmp_path_factory.mktemp("tflite")

    def get(quantize="none", gpu=False, int8_states=True):
        key = (quantize, gpu, int8_states)
        if key not in cache:
            calibration = None
            if quantize.startswith("int8"):
                # Calibration clips of the same kind as the test clips, other seeds.
                calibration = [random_video([1, 12, IMAGE_SIZE, IMAGE_SIZE, 3], seed=500 + i)[0]
                               for i in range(6)]
            suffix = "" if int8_states else "_float_states"
            path = root / f"model_{quantize}_{'gpu' if gpu else 'pub'}{suffix}.tflite"
            cache[key] = export_lib.export_tflite(
                a0_stream, path, image_size=IMAGE_SIZE, quantize=quantize, labels=LABELS,
                calibration_videos=calibration, gpu_compatible_states=gpu, min_image_size=36,
                int8_states=int8_states)
        return cache[key]

    return get
