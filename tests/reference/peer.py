"""Runs the official TF Model Garden MoViNet in a subprocess, for tests and benchmarks.

The official code is Keras 2 (tf_keras) and movinet_tf is Keras 3; the two do
not share a process. `run_official` writes the video to a .npy file, runs
`official_runner.py` with ``TF_USE_LEGACY_KERAS=1`` and returns the paths of
what it wrote (checkpoint, logits, states).

Example:
    pytestmark = pytest.mark.skipif(not peer.have_reference(), reason=peer.SKIP_REASON)

    paths = peer.run_official(tmp_path, video=video, model_id="a0", causal=True,
                              stream=True, conv_type="2plus1d", se_type="2plus3d",
                              activation="hard_swish", gating_activation="hard_sigmoid",
                              num_classes=5)
    movinet_tf.load_official_checkpoint(model, paths["checkpoint"])
    np.testing.assert_allclose(model(video), np.load(paths["clip_logits"]), atol=1e-4)
"""
import functools
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np

SKIP_REASON = "tf-models-official not installed (make install-reference)"
RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "official_runner.py")

# Official flags that take a value, and the boolean ones.
_VALUE_FLAGS = ("model_id", "conv_type", "se_type", "activation", "gating_activation",
                "classifier_activation", "num_classes", "seed", "stream_step", "checkpoint")
_BOOL_FLAGS = ("causal", "stream", "use_positional_encoding", "saved_model")


@functools.lru_cache(maxsize=None)
def have_reference():
    """True when tf-models-official (with its MoViNet project) and tf_keras are importable.

    Looks the modules up without importing them, so it costs no TensorFlow start-up.
    """
    if importlib.util.find_spec("tf_keras") is None:
        return False
    official = importlib.util.find_spec("official")
    if official is None or not official.submodule_search_locations:
        return False
    return any(
        os.path.isfile(os.path.join(location, "projects", "movinet", "modeling", "movinet.py"))
        for location in official.submodule_search_locations)


def official_env():
    """The environment for a subprocess running the official code."""
    env = dict(os.environ)
    env["TF_USE_LEGACY_KERAS"] = "1"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def run_official(tmpdir, video, timeout=900, **kwargs):
    """Runs the official model on `video` in a subprocess and returns its outputs' paths.

    Args:
        tmpdir: a directory to write into (a pytest `tmp_path` is fine).
        video: float32 array [B, T, H, W, 3] in [0, 1].
        timeout: seconds before the subprocess is killed.
        **kwargs: `official_runner.py` flags: model_id, causal, stream, stream_step,
            conv_type, se_type, activation, gating_activation, classifier_activation,
            use_positional_encoding, num_classes, seed, checkpoint (restore instead of
            randomising).

    Returns:
        dict with the paths `checkpoint` (a prefix for `tf.train.load_checkpoint` and
        `movinet_tf.load_official_checkpoint`), `clip_logits` ([B, classes]),
        `states` (json: name -> {shape, dtype}), `meta` (json) and, with
        `stream=True`, `stream_logits` ([num_calls, B, classes]) and `final_states` (.npz).

    Raises:
        TypeError: for an unknown keyword.
        ValueError: if `video` is not [B, T, H, W, 3].
        RuntimeError: if the official run fails; the message carries its stderr tail.
    """
    unknown = sorted(set(kwargs) - set(_VALUE_FLAGS) - set(_BOOL_FLAGS))
    if unknown:
        raise TypeError(f"run_official got unknown argument(s) {unknown}; "
                        f"expected some of {sorted(_VALUE_FLAGS + _BOOL_FLAGS)}")
    video = np.asarray(video, dtype=np.float32)
    if video.ndim != 5 or video.shape[-1] != 3:
        raise ValueError(f"video has shape {video.shape}, expected [B, T, H, W, 3]")
    tmpdir = os.fspath(tmpdir)
    output_dir = os.path.join(tmpdir, "official")
    os.makedirs(output_dir, exist_ok=True)
    input_path = os.path.join(tmpdir, "official_input.npy")
    np.save(input_path, video)

    command = [sys.executable, RUNNER, f"--input={input_path}", f"--output_dir={output_dir}"]
    for name in _VALUE_FLAGS:
        if kwargs.get(name) is not None:
            command.append(f"--{name}={kwargs[name]}")
    for name in _BOOL_FLAGS:
        if kwargs.get(name):
            command.append(f"--{name}")
    result = subprocess.run(command, env=official_env(), capture_output=True, text=True,
                            timeout=timeout, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"official run failed ({result.returncode}): {' '.join(command)}\n"
                           f"{result.stderr[-4000:]}")

    with open(os.path.join(output_dir, "meta.json")) as f:
        meta = json.load(f)
    paths = {
        "checkpoint": meta["checkpoint"],
        "clip_logits": os.path.join(output_dir, "clip_logits.npy"),
        "states": os.path.join(output_dir, "states.json"),
        "meta": os.path.join(output_dir, "meta.json"),
    }
    if kwargs.get("saved_model"):
        paths["saved_model"] = meta["saved_model"]
    if kwargs.get("stream"):
        paths["stream_logits"] = os.path.join(output_dir, "stream_logits.npy")
        paths["final_states"] = os.path.join(output_dir, "final_states.npz")
    return paths

