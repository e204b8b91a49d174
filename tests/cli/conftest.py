"""Shared fixtures of the CLI suite: one trained tiny run, a video folder, a CLI runner.

Every test here runs a real CLI in a subprocess, as a user does. The trained run
is made once per session (2 steps of the `tiny` config) and read by every test;
a test that must write into a run copies it first.
"""
import hashlib
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# TensorFlow's C++ log format: "I0000 00:00:1796119.123 5224 port.cc:153] ...".
TF_LOG_LINE = re.compile(r"^[IWEF]\d{4} [\d:.]+\s+\d+ [\w/.-]+\.cc:\d+\]", re.MULTILINE)


def cli_env(cache):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env.update(PYTHONPATH=REPO, MOVINET_CACHE=str(cache))
    return env


def run_cli(args, cache, timeout=300):
    """Runs ``python <args>`` from the repository root; returns the CompletedProcess."""
    return subprocess.run([sys.executable, *map(str, args)], cwd=REPO, env=cli_env(cache),
                          capture_output=True, text=True, timeout=timeout)


def train_args(*args, sets=()):
    command = ["-m", "movinet_tf.train", *args]
    for item in sets:
        command += ["--set", item]
    return command


def tree_hash(root):
    """``{relative path: sha256}`` of every file under `root` (folders as None)."""
    found = {}
    for parent, dirs, files in os.walk(root):
        for name in dirs:
            found[os.path.relpath(os.path.join(parent, name), root)] = None
        for name in files:
            path = os.path.join(parent, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
    return found


def assert_one_line_error(result, expected):
    """Exit status 2, a last stderr line ``error: ...`` naming `expected`, no traceback or TF log."""
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], output[-3000:]
    assert expected in errors[0], errors[0]
    assert not TF_LOG_LINE.search(output), TF_LOG_LINE.search(output).group(0)
    assert "absl::InitializeLog" not in output


@pytest.fixture(scope="session")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cli_cache")


TRAIN_SETS = ("train.steps=2", "train.checkpoint_every=1", "train.log_every=1",
              "data.source=folder", "data.num_classes=2")


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, cache, video_folder):
    """A finished 2-step tiny run on `video_folder` (ckpt-1, ckpt-2, config.yaml); never modified."""
    model_dir = tmp_path_factory.mktemp("cli_runs") / "tiny"
    result = run_cli(train_args("--config", "tiny", "--model_dir", model_dir, "--mode", "train",
                                sets=[*TRAIN_SETS, f"data.path={video_folder}"]), cache)
    assert result.returncode == 0, result.stderr[-3000:]
    return model_dir


@pytest.fixture
def run_copy(trained_run, tmp_path):
    """A copy of the trained run that a test may write into."""
    copy = tmp_path / "run"
    shutil.copytree(trained_run, copy)
    return copy


@pytest.fixture(scope="session")
def video_folder(tmp_path_factory):
    """``root/{train,val}/{a,b}/*.mp4``: 2 classes, 2 + 1 videos each, 8 frames of 32x32."""
    from movinet_tf.data import write_video
    root = tmp_path_factory.mktemp("videos")
    rng = np.random.default_rng(0)
    for split, count in (("train", 2), ("val", 1)):
        for label in ("a", "b"):
            for index in range(count):
                frames = rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
                path = root / split / label / f"{index}.mp4"
                path.parent.mkdir(parents=True, exist_ok=True)
                write_video(str(path), frames, 25)
    return root
