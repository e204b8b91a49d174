"""Peak memory of streaming against whole-clip inference, ours beside the official code.

    python benchmarks/stream_memory.py --quick     # small run, a couple of minutes
    python benchmarks/stream_memory.py             # 50/500/5000 streamed frames; clips of 8..128

Streaming: A0-stream (the TFLite configuration) at 172x172, one frame per call
through a `tf.function` step; memory must stay flat however long the stream.
Whole clip: A0 base at 172x172 on clips of increasing length; memory grows
roughly linearly with the frames.

Every measurement runs in a fresh subprocess so peaks don't mix. Inside it, the
model is built and warmed up first (one step / a one-frame clip), the RSS is
read as the baseline, and a psutil thread samples the RSS every 5 ms during the
measured run; the table shows peak minus baseline. The official model runs the
same way with tf_keras when tf-models-official is installed.
Don't run the full version while others are running heavy tests.
"""
import os
import sys
import textwrap

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app, flags  # noqa: E402

import _peer  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_bool("quick", False, "Small run: stream 50 and 200 frames, clips of 8 and 16.")
flags.DEFINE_list("stream_frames", ["50", "500", "5000"], "Streamed frame counts.")
flags.DEFINE_list("clip_frames", ["8", "16", "32", "64", "128"], "Whole-clip frame counts.")
flags.DEFINE_integer("size", 172, "Frame height and width.")
flags.DEFINE_bool("no_official", False, "Measure ours only.")

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Defines rss_mb() and PeakSampler, used by every measuring subprocess.
_MEASURE_SOURCE = textwrap.dedent("""
    import json, threading, time
    import numpy as np
    import psutil
    import tensorflow as tf

    _PROCESS = psutil.Process()

    def rss_mb():
        return _PROCESS.memory_info().rss / 2**20

    class PeakSampler:
        def __enter__(self):
            self.peak = rss_mb()
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
            return self

        def _run(self):
            while not self._stop.wait(0.005):
                self.peak = max(self.peak, rss_mb())

        def __exit__(self, *exc):
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, rss_mb())

    def measure_stream(step, states, frames, size):
        rng = np.random.default_rng(0)
        # A small pool of frames, so the input itself takes no memory as the stream grows.
        pool = [tf.constant(rng.uniform(0, 1, (1, 1, size, size, 3)).astype(np.float32))
                for _ in range(8)]
        logits, states = step({**states, "image": pool[0]})  # trace and warm up
        baseline = rss_mb()
        start = time.perf_counter()
        with PeakSampler() as sampler:
            for index in range(frames):
                logits, states = step({**states, "image": pool[index % len(pool)]})
            float(tf.reduce_sum(logits))
        seconds = time.perf_counter() - start
        print(json.dumps({"baseline_mb": baseline, "peak_mb": sampler.peak,
                          "ms_per_frame": 1000 * seconds / frames}))

    def measure_clip(call, frames, size):
        rng = np.random.default_rng(0)
        call(tf.constant(rng.uniform(0, 1, (1, 1, size, size, 3)).astype(np.float32)))
        video = tf.constant(rng.uniform(0, 1, (1, frames, size, size, 3)).astype(np.float32))
        baseline = rss_mb()
        start = time.perf_counter()
        with PeakSampler() as sampler:
            float(tf.reduce_sum(call(video)))
        seconds = time.perf_counter() - start
        print(json.dumps({"baseline_mb": baseline, "peak_mb": sampler.peak,
                          "ms_per_frame": 1000 * seconds / frames}))
""")

_OURS_STREAM = textwrap.dedent("""
    import movinet_tf
    model = movinet_tf.build_model("a0", stream=True, num_classes=600)
    shape = [1, 1, {size}, {size}, 3]
    specs = model.state_specs(shape)
    step = tf.function(lambda inputs: model(inputs, training=False),
                       input_signature=[{{**specs, "image": tf.TensorSpec(shape, tf.float32)}}])
    measure_stream(step, model.init_states(shape), {frames}, {size})
""")

_OURS_CLIP = textwrap.dedent("""
    import movinet_tf
    model = movinet_tf.build_model("a0", num_classes=600)
    measure_clip(lambda video: model(video, training=False), {frames}, {size})
""")

_OFFICIAL_STREAM = textwrap.dedent("""
    shape = [1, 1, {size}, {size}, 3]
    model = build("a0", {config!r}, external_states=True, image_shape=shape)
    step = tf.function(lambda inputs: model(inputs, training=False))
    measure_stream(step, model.init_states(shape), {frames}, {size})
""")

_OFFICIAL_CLIP = textwrap.dedent("""
    model = build("a0", {config!r}, image_shape=[1, None, {size}, {size}, 3])
    measure_clip(lambda video: model({{"image": video}}, training=False), {frames}, {size})
""")


def _measure(official, mode, frames, size):
    if official:
        template = _OFFICIAL_STREAM if mode == "stream" else _OFFICIAL_CLIP
        config = _peer.official_config("a0", stream=(mode == "stream"))
        code = (_MEASURE_SOURCE + _peer.OFFICIAL_BUILD_SOURCE
                + template.format(frames=frames, size=size, config=config))
        env = _peer.official_env()
    else:
        template = _OURS_STREAM if mode == "stream" else _OURS_CLIP
        code = _MEASURE_SOURCE + template.format(frames=frames, size=size)
        env = dict(os.environ)
        env["PYTHONPATH"] = _REPO + os.pathsep + env.get("PYTHONPATH", "")
    return _peer.run_python(code, env=env)


def _ratio(ours, theirs):
    return f"{ours / theirs:.2f}" if theirs else "-"


def main(argv):
    del argv
    if FLAGS.quick:
        stream_frames, clip_frames = [50, 200], [8, 16]
    else:
        stream_frames = [int(n) for n in FLAGS.stream_frames]
        clip_frames = [int(n) for n in FLAGS.clip_frames]
    official = not FLAGS.no_official and _peer.have_reference()
    if not FLAGS.no_official and not official:
        print(f"Official side skipped: {_peer.INSTALL_HINT}")

    header = (f"{'mode':<8}{'frames':>7}{'ours base MB':>14}{'ours +MB':>10}{'ms/frame':>10}"
              f"{'official +MB':>14}{'ms/frame':>10}{'+MB ratio':>11}")
    print(f"A0 at {FLAGS.size}x{FLAGS.size}: peak RSS growth over the warmed-up model "
          "(each row: fresh subprocesses)")
    print(header)
    print("-" * len(header))
    runs = [("stream", n) for n in stream_frames] + [("clip", n) for n in clip_frames]
    for mode, frames in runs:
        ours = _measure(False, mode, frames, FLAGS.size)
        ours_growth = ours["peak_mb"] - ours["baseline_mb"]
        theirs_growth = theirs_ms = None
        if official:
            theirs = _measure(True, mode, frames, FLAGS.size)
            theirs_growth = theirs["peak_mb"] - theirs["baseline_mb"]
            theirs_ms = theirs["ms_per_frame"]
        print(f"{mode:<8}{frames:>7}{ours['baseline_mb']:>14.0f}{ours_growth:>10.1f}"
              f"{ours['ms_per_frame']:>10.1f}"
              f"{(f'{theirs_growth:.1f}' if theirs_growth is not None else '-'):>14}"
              f"{(f'{theirs_ms:.1f}' if theirs_ms is not None else '-'):>10}"
              f"{_ratio(ours_growth, theirs_growth):>11}", flush=True)


if __name__ == "__main__":
    app.run(main)
