"""Constants and helpers shared by the Android demo tests (no fixtures here)."""
import os
import pathlib
import shutil
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
ANDROID_DEMO = REPO / "android_demo"
HARNESS_SOURCE = pathlib.Path(__file__).resolve().parent / "java" / "CoreHarness.java"

def _java_home():
    """The JDK that `javac` on PATH belongs to (for jni.h)."""
    javac = shutil.which("javac")
    if javac is None:
        return pathlib.Path("/nonexistent")
    return pathlib.Path(os.path.realpath(javac)).parents[1]


JAVA_HOME = _java_home()

# The test model: A0 stream at the app's input size, random weights.
IMAGE_SIZE = 172
NUM_CLASSES = 600
# bikes.mp4 is 25 fps; every 5th frame feeds the model at the app's default 5 fps.
CLIP_FRAMES = 150
CLIP_STRIDE = 5


def cache_dir():
    """Same rule as android_demo/fetch_deps.sh."""
    root = os.environ.get("MOVINET_CACHE")
    return pathlib.Path(root) / "android" if root else ANDROID_DEMO / ".cache"


def missing(what):
    """Skips (developer machine) or fails (CI) with the command that fixes it."""
    message = (f"{what}; run `bash android_demo/install_build_tools.sh` (apt tools + "
               f"android_demo/fetch_deps.sh into {cache_dir()})")
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def run(cmd, **kwargs):
    """Runs a command, failing the test with its output when it exits non-zero."""
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(str(c) for c in cmd)} exited {result.returncode}\n"
                    f"stdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}")
    return result


def key_values(stdout):
    """Parses the harness's "key=value" lines."""
    return dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line)
