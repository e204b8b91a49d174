"""Prints the README's model table: params (base and stream), states and multiply-adds.

    python benchmarks/model_table.py                 # ours, plus the official params if installed
    python benchmarks/model_table.py --no_official   # ours only (a few minutes on 2 cores)
    python benchmarks/model_table.py --models=a0,a1

For each of A0-A5 and T0 it builds the base and the stream model (600 classes) and
prints their parameters, the stream model's number of states, and the base model's
multiply-adds per clip at the paper's input size beside the paper's "GFLOPs" and the
official code's count. GMACs are multiply-adds of convs and dense layers (the paper's
"GFLOPs"), counted by tracing with `movinet_tf.count_flops`. The official multiply-adds
are the team's measurement of the official code (shared/reference/peer_setup.md); the
official params are counted live when tf-models-official is installed
(make -f Makefile.reference install-reference).
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app, flags  # noqa: E402
import numpy as np  # noqa: E402

import _peer  # noqa: E402
import movinet_tf  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_list("models", list(movinet_tf.MODEL_IDS), "Model ids to print.")
flags.DEFINE_bool("no_official", False, "Skip building the official models for params.")
flags.DEFINE_integer("num_classes", 600, "Classes of the classifier (Kinetics-600: 600).")

# model id -> (frames, size) of the paper's evaluation clip.
PAPER_INPUT = {"a0": (50, 172), "a1": (50, 172), "a2": (50, 224), "a3": (120, 256),
               "a4": (80, 290), "a5": (120, 320), "t0": (25, 160)}
PAPER_GFLOPS = {"a0": 2.7, "a1": 6.0, "a2": 10.0, "a3": 57.0, "a4": 110.0, "a5": 280.0}
OFFICIAL_GMACS = {"a0": 2.631, "a1": 5.866, "a2": 11.558, "a3": 55.593, "a4": 103.339,
                  "a5": 276.334}
# A0-stream per frame at 172x172 in the TFLite configuration, as the official counter sees it.
OFFICIAL_A0_STREAM_FRAME_GMACS = 0.0453


def _ratio(ours, theirs):
    return f"{ours / theirs:.3f}" if theirs else "-"


def _fmt(value, spec):
    return format(value, spec) if value is not None else "-"


def main(argv):
    del argv
    unknown = [m for m in FLAGS.models if m not in movinet_tf.MODEL_IDS]
    if unknown:
        raise ValueError(f"--models has unknown id(s) {unknown}; expected some of "
                         f"{list(movinet_tf.MODEL_IDS)}")
    official_base, official_stream = {}, {}
    if not FLAGS.no_official:
        if _peer.have_reference():
            print("Building the official models for their params (subprocess)...", flush=True)
            official_base = _peer.official_param_counts(FLAGS.models, stream=False,
                                                        num_classes=FLAGS.num_classes)
            official_stream = _peer.official_param_counts(FLAGS.models, stream=True,
                                                          num_classes=FLAGS.num_classes)
        else:
            print(f"Official params skipped: {_peer.INSTALL_HINT}")

    header = (f"{'model':<6}{'base params':>13}{'official':>13}{'stream params':>15}"
              f"{'official':>13}{'states':>8}{'clip (base)':>13}{'GMACs':>10}{'paper':>8}"
              f"{'ratio':>7}{'official':>10}{'ratio':>7}")
    print(header)
    print("-" * len(header))
    for model_id in FLAGS.models:
        frames, size = PAPER_INPUT[model_id]
        base = movinet_tf.build_model(model_id, num_classes=FLAGS.num_classes)
        base_params = base.count_params()
        gmacs = movinet_tf.count_flops(base, [1, frames, size, size, 3]) / 1e9
        del base
        stream = movinet_tf.build_model(model_id, stream=True, num_classes=FLAGS.num_classes)
        stream(stream.init_states([1, 1, size, size, 3]) | {
            "image": np.zeros([1, 1, size, size, 3], np.float32)})   # creates the weights
        stream_params = stream.count_params()
        num_states = len(stream.init_states([1, 1, size, size, 3]))
        del stream
        paper = PAPER_GFLOPS.get(model_id)
        official = OFFICIAL_GMACS.get(model_id)
        print(f"{model_id:<6}{base_params:>13,}{_fmt(official_base.get(model_id), ',d'):>13}"
              f"{stream_params:>15,}{_fmt(official_stream.get(model_id), ',d'):>13}"
              f"{num_states:>8}{f'{frames}x{size}^2':>13}{gmacs:>10.3f}{_fmt(paper, '.1f'):>8}"
              f"{_ratio(gmacs, paper):>7}{_fmt(official, '.3f'):>10}{_ratio(gmacs, official):>7}",
              flush=True)

    stream = movinet_tf.build_model("a0", stream=True, num_classes=FLAGS.num_classes)
    kinds = movinet_tf.count_flops(stream, [1, 1, 172, 172, 3], by_kind=True)
    total = (kinds["conv"] + kinds["depthwise"]) / 1e9
    print()
    print("A0-stream per frame, 1x1x172x172, TFLite configuration (2plus1d, 2plus3d, hard_swish):")
    print(f"  GMACs all convs        {total:.4f}")
    print(f"  GMACs without 2D depthwise (what the official counter sees) "
          f"{kinds['conv'] / 1e9:.4f}   official {OFFICIAL_A0_STREAM_FRAME_GMACS}   ratio "
          f"{_ratio(kinds['conv'] / 1e9, OFFICIAL_A0_STREAM_FRAME_GMACS)}")


if __name__ == "__main__":
    app.run(main)
