"""Shared fixtures for the Android demo tests: tools, cached runtimes, the test model, builds.

Nothing here uses the network. The runtime libraries, bullseye's dx/android.jar and the test
clip come from the cache that `android_demo/install_build_tools.sh` fills (it calls
`android_demo/fetch_deps.sh`). Outside CI a missing cache or tool skips these tests with the
command to run; under CI (env CI set) it fails, so a broken install cannot pass as green.
"""
import os
import shutil
import subprocess

import numpy as np
import pytest

from tests.android.support import (ANDROID_DEMO, CLIP_FRAMES, CLIP_STRIDE, HARNESS_SOURCE,
                                   IMAGE_SIZE, JAVA_HOME, NUM_CLASSES, cache_dir, missing, run)

@pytest.fixture(scope="session")
def tools():
    needed = ["javac", "java", "gcc", "readelf", "nm"]
    absent = [t for t in needed if shutil.which(t) is None]
    if absent or not (JAVA_HOME / "include" / "jni.h").is_file():
        missing(f"tools not installed: {absent or 'jni.h'}")


@pytest.fixture(scope="session")
def host_runtime(tools):
    """liblitert-lm.so (TFLite C API) for x86_64 Linux."""
    lib = cache_dir() / "runtime" / "linux-x86_64" / "liblitert-lm.so"
    if not lib.is_file():
        missing(f"{lib} is missing")
    return lib


@pytest.fixture(scope="session")
def bikes_clip():
    clip = cache_dir() / "clips" / "bikes.mp4"
    if not clip.is_file():
        missing(f"{clip} is missing")
    return clip


@pytest.fixture(scope="session")
def host_bridge(host_runtime, tmp_path_factory):
    """The JNI bridge built with gcc for x86_64 Linux, next to the runtime it links."""
    out = tmp_path_factory.mktemp("host_bridge")
    os.symlink(host_runtime, out / "liblitert-lm.so")
    bridge = out / "libtflitejni.so"
    run(["gcc", "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror",
         f"-I{JAVA_HOME / 'include'}", f"-I{JAVA_HOME / 'include' / 'linux'}",
         ANDROID_DEMO / "jni" / "tflite_jni.c", f"-L{out}", "-llitert-lm",
         "-Wl,-rpath,$ORIGIN", "-o", bridge])
    return bridge


@pytest.fixture(scope="session")
def core_classes(tools, tmp_path_factory):
    """android_demo/core compiled for Java 8 with only the JDK on the classpath (so no
    android.* import can sneak in), plus the test harness."""
    out = tmp_path_factory.mktemp("core_classes")
    sources = sorted((ANDROID_DEMO / "core" / "src").rglob("*.java"))
    run(["javac", "--release", "8", "-Xlint:all", "-Werror", "-d", out, *sources])
    run(["javac", "--release", "8", "-cp", out, "-d", out, HARNESS_SOURCE])
    return out


@pytest.fixture(scope="session")
def harness(core_classes, host_bridge, host_runtime):
    """Runs CoreHarness with the given arguments; returns the CompletedProcess."""

    def call(*args, check=True):
        cmd = ["java", "-cp", core_classes, f"-Dmovinet.runtime={host_runtime}",
               f"-Dmovinet.bridge={host_bridge}", "CoreHarness", *args]
        if check:
            return run(cmd, timeout=300)
        return subprocess.run([str(c) for c in cmd], capture_output=True, text=True,
                              timeout=300)

    return call


@pytest.fixture(scope="session")
def stream_model(tmp_path_factory):
    """A0 stream single-frame TFLite ({IMAGE_SIZE}px, random weights) with its labels and
    manifest, written by the project's exporter (movinet_tf.export_lib.export_tflite).

    Returns:
        dict with paths 'tflite', 'labels', 'manifest' (or None), and 'labels_list'.
    """
    import movinet_tf

    out = tmp_path_factory.mktemp("stream_model")
    labels = [f"class {i:03d}" for i in range(NUM_CLASSES)]
    from helpers import randomize_weights

    model = movinet_tf.build_model("a0", stream=True, num_classes=NUM_CLASSES)
    # Random BN statistics and non-zero ReZero/positional scales, so every branch (and every
    # state) affects the logits; the gain keeps logits O(1) for an absolute tolerance.
    randomize_weights(model, seed=0, gain=1.0)
    path = out / "a0_stream.tflite"
    from movinet_tf.export_lib import export_tflite
    export_tflite(model, str(path), image_size=IMAGE_SIZE, labels=labels)
    label_files = sorted(p for p in out.iterdir() if p.suffix == ".txt")
    manifests = sorted(p for p in out.iterdir() if p.suffix == ".json")
    assert label_files, f"export wrote no labels file next to {path}: {list(out.iterdir())}"
    return {"tflite": path, "labels": label_files[0],
            "manifest": manifests[0] if manifests else None, "labels_list": labels}


@pytest.fixture(scope="session")
def clip_frames(bikes_clip):
    """Real frames: bikes.mp4 decoded by the project's OpenCV reader, every 5th of the first
    150 (6 s at 5 fps): uint8 [30, 272, 640, 3]."""
    from movinet_tf.data.video_io import read_video

    frames, fps = read_video(bikes_clip, max_frames=CLIP_FRAMES)
    assert frames.shape[1:] == (272, 640, 3) and fps == pytest.approx(25.0)
    return np.ascontiguousarray(frames[::CLIP_STRIDE])
