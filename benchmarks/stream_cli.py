"""Peak memory, time to first line and speed of the stream CLI, beside plain OpenCV; and the
peak memory of the training pipeline on short against long videos.

    python benchmarks/stream_cli.py --quick        # a few minutes
    python benchmarks/stream_cli.py                # 60/1500/9000 frames at 176x144 .. 4K
    python benchmarks/stream_cli.py --max_4k_frames 9000 --max_1080p_frames 9000   # no caps

Videos are written by the script (mp4v, moving shapes on a gradient, 25 fps).
For each one, the CLI streams it through a tiny TFLite model at 56x56 (random
weights: speed does not depend on them) in a fresh process, with ``--fps 25``
so that every frame is decoded, resized, cropped and fed (the worst case; the
default rate of a model trained at 12.5 fps retrieves half of them):

* peak RSS of that process (``VmHWM`` of /proc/PID/status, which starts
  afresh at exec, polled every 10 ms; ``ru_maxrss`` would include the forked
  parent);
* time to first line: from the process start to the first per-second line,
  which needs one second (25 frames) of video;
* CLI fps: source frames / (time of the final line - time of the header line);
* limit fps: plain ``cv2.VideoCapture.read`` + ``cv2.resize`` to the model's
  short side of the same file in this process, i.e. what decoding alone allows.

The pipeline section runs one training epoch of `build_dataset` (batch 8,
folder source of 8 videos at 320x240) in a fresh process per video length and
prints its peak RSS.
"""
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_bool("quick", False, "176x144 and 640x480 only, 60 and 1500 frames.")
flags.DEFINE_string("sizes", "176x144,640x480,1920x1080,3840x2160", "WxH list.")
flags.DEFINE_string("frames", "60,1500,9000", "Frame counts per size.")
flags.DEFINE_integer("max_4k_frames", 600, "Cap on frames at 3840x2160 (writing and "
                     "decoding 9000 4K frames takes too long on a small, shared machine).")
flags.DEFINE_integer("max_1080p_frames", 3000, "Cap on frames at 1920x1080 (same reason).")
flags.DEFINE_bool("pipeline", True, "Also measure the training pipeline.")
flags.DEFINE_string("workdir", None, "Where videos go (default: a temporary folder).")


def write_video(path, width, height, num_frames, fps=25.0):
    """Moving shapes on a gradient, written frame by frame (never held in memory)."""
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    gradient = np.linspace(0, 200, width, dtype=np.float32)[None, :, None]
    background = np.broadcast_to(gradient, (height, width, 3)).astype(np.uint8)
    side = max(8, min(width, height) // 5)
    for i in range(num_frames):
        frame = background.copy()
        x = int((i * 7) % max(width - side, 1))
        y = int((i * 3) % max(height - side, 1))
        frame[y:y + side, x:x + side] = (40, 180, 250)
        writer.write(frame)
    writer.release()


def limit_fps(path, min_image_size):
    """Plain OpenCV decode + short-side resize of every frame (the CLI's ceiling)."""
    capture = cv2.VideoCapture(path)
    count = 0
    start = time.perf_counter()
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        height, width = frame.shape[:2]
        scale = min_image_size / min(height, width)
        cv2.resize(frame, (round(width * scale), round(height * scale)),
                   interpolation=cv2.INTER_LINEAR)
        count += 1
    capture.release()
    return count / (time.perf_counter() - start)


def _peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def _watch_peak(process, peaks):
    while process.poll() is None:
        try:
            peaks.append(_peak_rss_mb(process.pid))
        except OSError:
            break
        time.sleep(0.01)


def run_cli(video, model):
    """(peak RSS MB, seconds to the first line, CLI fps, frames) of one CLI run."""
    env = dict(os.environ, PYTHONPATH=REPO)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "movinet_tf.stream", video, "--model",
                                model, "--fps", "25"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)
    peaks = [0.0]
    watcher = threading.Thread(target=_watch_peak, args=(process, peaks), daemon=True)
    watcher.start()
    header = first = final = None
    for line in process.stdout:
        now = time.perf_counter() - start
        if header is None:
            header = now
        elif first is None and line.strip().endswith(tuple("0123456789")) and "s  " in line:
            first = now
        if line.startswith("Final prediction"):
            final = now
    try:
        peaks.append(_peak_rss_mb(process.pid))  # Readable unless the watcher reaped it.
    except OSError:
        pass
    stderr = process.stderr.read()
    status = process.wait()
    watcher.join()
    if status != 0 or final is None:
        raise RuntimeError(f"stream CLI failed on {video}: {stderr[-2000:]}")
    frames = int(cv2.VideoCapture(video).get(cv2.CAP_PROP_FRAME_COUNT))
    return max(peaks), first, frames / (final - header), frames


_PIPELINE = textwrap.dedent("""
    import dataclasses, sys
    from movinet_tf.data import DataConfig, build_dataset
    cfg = dataclasses.replace(DataConfig(), source="folder", path=sys.argv[1], num_classes=2,
                              batch_size=8, num_frames=16, temporal_stride=2, image_size=56,
                              min_image_size=64)
    batches = sum(1 for _ in build_dataset(cfg, "train", training=True))
    peak = [line for line in open("/proc/self/status") if line.startswith("VmHWM:")][0]
    print(batches, int(peak.split()[1]) / 1024.0)   # VmHWM starts afresh at exec
""")


def pipeline_peak(root):
    env = dict(os.environ, PYTHONPATH=REPO)
    result = subprocess.run([sys.executable, "-c", _PIPELINE, root], capture_output=True,
                            text=True, env=env, check=True)
    batches, peak = result.stdout.split()
    return int(batches), float(peak)


def export_model(workdir):
    from movinet_tf.export_lib import export_tflite, load_model
    loaded = load_model("tiny", image_size=56)
    path = os.path.join(workdir, "tiny56.tflite")
    export_tflite(loaded.model, path, image_size=56, contract=loaded.contract)
    return path, loaded.contract.min_image_size


def main(argv):
    del argv
    workdir = FLAGS.workdir or tempfile.mkdtemp(prefix="stream_cli_bench.")
    sizes = ["176x144", "640x480"] if FLAGS.quick else FLAGS.sizes.split(",")
    counts = [60, 1500] if FLAGS.quick else [int(n) for n in FLAGS.frames.split(",")]
    model, min_image_size = export_model(workdir)
    print(f"model: tiny stream at 56x56 ({model}); videos in {workdir}")
    print(f"{'video':>16} {'frames':>6} {'peak RSS MB':>11} {'first line s':>12} "
          f"{'CLI fps':>8} {'limit fps':>9} {'ratio':>6}")
    for size in sizes:
        width, height = (int(v) for v in size.split("x"))
        rows = []
        for count in counts:
            if width * height >= 3840 * 2160:
                count = min(count, FLAGS.max_4k_frames)
            elif width * height >= 1920 * 1080:
                count = min(count, FLAGS.max_1080p_frames)
            if rows and count == rows[-1][0]:
                continue
            path = os.path.join(workdir, f"{size}_{count}.mp4")
            if not os.path.exists(path):
                write_video(path, width, height, count)
            peak, first, fps, frames = run_cli(path, model)
            limit = limit_fps(path, min_image_size)
            rows.append((count, peak))
            print(f"{size:>16} {frames:>6} {peak:>11.0f} {first:>12.2f} {fps:>8.1f} "
                  f"{limit:>9.1f} {fps / limit:>6.2f}", flush=True)
            if count > 1500:
                os.remove(path)  # Long videos take GBs of disk.
        print(f"{size:>16} RSS growth {rows[0][0]} -> {rows[-1][0]} frames: "
              f"{rows[-1][1] - rows[0][1]:+.0f} MB", flush=True)
    if not FLAGS.pipeline:
        return
    print("\ntraining pipeline, one epoch, batch 8, 8 videos of 320x240 (folder source):")
    peaks = []
    for count in (48, 1500):
        root = os.path.join(workdir, f"pipeline_{count}")
        for split in ("train", "val"):
            for label in ("a", "b"):
                folder = os.path.join(root, split, label)
                os.makedirs(folder, exist_ok=True)
                for i in range(4 if split == "train" else 1):
                    path = os.path.join(folder, f"{i}.mp4")
                    if not os.path.exists(path):
                        write_video(path, 320, 240, count)
        batches, peak = pipeline_peak(root)
        peaks.append(peak)
        print(f"  {count:>5}-frame videos: {batches} batch(es), peak RSS {peak:.0f} MB", flush=True)
    print(f"  growth 48 -> 1500 frames: {peaks[1] - peaks[0]:+.0f} MB")


if __name__ == "__main__":
    app.run(main)
