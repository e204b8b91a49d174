"""Accuracy of the quantized streaming TFLite models of a trained run, against float and labels.

    python benchmarks/quantization_accuracy.py --model_dir runs/quickstart   # after `make demo`

For each export mode (none, float16, float16_arithmetic, dynamic, int8,
int8_uint8_input) it exports the run's stream model, streams the builtin
validation videos through LiteRT one frame at a time and prints, per mode: top-1
accuracy against the labels after the last frame, top-1 agreement with the float
Keras graph (after the last frame and over every frame) and the largest / mean
absolute logit error. int8 is calibrated on
training videos (streamed through the float model, so the samples carry real
states); the validation videos are never used for calibration. Which frames of
each calibration video are sampled is random: `--calibration_seeds 0,1,2,3`
gives one int8 row per seed, and the spread across them.
float16_arithmetic gets a second row with XNNPACK's float16 arithmetic forced.

The run must be a builtin-data run (the quickstart's): its config names the data.
"""
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", "runs/quickstart", "A training run on builtin data.")
flags.DEFINE_integer("num_val_videos", 50, "Validation videos to stream (spread over classes).")
flags.DEFINE_integer("num_calibration_videos", 16, "Training videos for int8 calibration.")
flags.DEFINE_list("modes", ["none", "float16", "float16_arithmetic", "dynamic", "int8",
                                "int8_uint8_input"],
                  "Export modes to measure.")
flags.DEFINE_list("calibration_seeds", ["0"],
                  "int8 modes: one export per seed of the calibration frame draw.")


def _spread(paths, labels, count):
    """`count` items taken evenly over a class-ordered list."""
    picks = np.linspace(0, len(paths) - 1, num=min(count, len(paths))).round().astype(int)
    return [paths[i] for i in picks], [int(labels[i]) for i in picks]


def _clips(paths, cfg):
    from movinet_tf.data import preprocess_eval_frames, read_video
    from movinet_tf.streaming import sample_indices
    model_fps = cfg.data.video_fps / cfg.data.temporal_stride
    clips = []
    for path in paths:
        frames, fps = read_video(path)
        frames = frames[sample_indices(len(frames), fps or cfg.data.video_fps, model_fps)]
        clips.append(np.asarray(preprocess_eval_frames(
            frames, cfg.data.image_size, max(cfg.data.min_image_size, cfg.data.image_size)),
            np.float32))
    return clips


def _last_frame_logits(path, clip, force_fp16=False):
    """Logits after the last frame of `clip` streamed through a .tflite from zero states.

    A uint8-input model gets each frame as bytes (q = round(255 * x)), as a camera gives it.
    `force_fp16`: XNNPACK computes in float16 (LiteRT CompiledModel, FORCE_FP16 flag).
    """
    from ai_edge_litert.interpreter import Interpreter
    from movinet_tf.export_lib import CompiledRunner, zero_states
    if force_fp16:
        runner = CompiledRunner(path, 1, force_fp16=True)
    else:
        runner = Interpreter(model_path=path, num_threads=1).get_signature_runner()
    details = runner.get_input_details()
    image = details["image"]
    states = zero_states(details)
    for frame in clip:
        if image["dtype"] == np.uint8:
            scale, zero_point = image["quantization"]
            frame = np.clip(np.round(frame / scale + zero_point), 0, 255).astype(np.uint8)
        outputs = runner(image=frame.reshape(image["shape"]), **states)
        logits = outputs.pop("logits")
        states = outputs
    return np.asarray(logits).reshape(-1)


def main(argv):
    del argv
    from movinet_tf import export_lib
    from movinet_tf.data import builtin
    loaded = export_lib.load_model(None, FLAGS.model_dir)
    cfg = loaded.config
    if cfg is None or cfg.data.source != "builtin":
        sys.exit(f"{FLAGS.model_dir!r} is not a builtin-data training run.")
    root = builtin.ensure_builtin(cfg.data)
    val_paths, val_labels = _spread(*builtin.list_videos(root, "val"), FLAGS.num_val_videos)
    cal_paths, _ = _spread(*builtin.list_videos(root, "train"), FLAGS.num_calibration_videos)
    val_clips, cal_clips = _clips(val_paths, cfg), _clips(cal_paths, cfg)
    print(f"{FLAGS.model_dir}: {len(val_clips)} validation videos of {len(val_clips[0])} frames, "
          f"{cfg.data.image_size}x{cfg.data.image_size}; int8 calibrated on {len(cal_clips)} "
          "training videos.")
    seeds = [int(seed) for seed in FLAGS.calibration_seeds]
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for mode, seed in [(mode, seed) for mode in FLAGS.modes
                           for seed in (seeds if mode.startswith("int8") else [0])]:
            start = time.time()
            result = export_lib.export_tflite(
                loaded.model, os.path.join(work, f"{mode}.tflite"), image_size=loaded.image_size,
                quantize=mode, labels=loaded.labels,
                calibration_videos=cal_clips if mode.startswith("int8") else None,
                min_image_size=loaded.min_image_size, calibration_seed=seed)
            label = f"{mode} (seed {seed})" if mode.startswith("int8") and len(seeds) > 1 else mode
            # float16_arithmetic computes in float32 on CPUs without float16 arithmetic (x86);
            # the forced row is what a phone with float16 arithmetic computes.
            runs = [(label, False)]
            if mode == "float16_arithmetic":
                runs.append((f"{mode} (fp16 forced)", True))
            for label, force_fp16 in runs:
                quality = export_lib.compare_with_float(loaded.model, result.model_path,
                                                        val_clips, force_fp16=force_fp16)
                correct = [int(np.argmax(_last_frame_logits(result.model_path, clip,
                                                            force_fp16))) == truth
                           for clip, truth in zip(val_clips, val_labels)]
                rows.append((label, result.size_bytes / 1e6, float(np.mean(correct)),
                             quality["top1_agreement_final"], quality["top1_agreement_frames"],
                             quality["max_logit_error"], quality["mean_logit_error"]))
            print(f"  {label}: done in {time.time() - start:.0f}s", flush=True)
    print()
    print("| mode | MB | val top-1 | agreement (last frame) | agreement (all frames) "
          "| max abs logit err | mean abs logit err |")
    print("|---|---|---|---|---|---|---|")
    for mode, size, top1, final, frames, max_err, mean_err in rows:
        print(f"| {mode} | {size:.2f} | {top1:.1%} | {final:.1%} | {frames:.1%} | "
              f"{max_err:.4f} | {mean_err:.4f} |")
    if len(seeds) > 1:
        print()
        for mode in [mode for mode in FLAGS.modes if mode.startswith("int8")]:
            mine = [row for row in rows if row[0].startswith(f"{mode} (seed")]
            print(f"{mode} over {len(mine)} calibration draws: val top-1 "
                  f"{min(r[2] for r in mine):.1%}-{max(r[2] for r in mine):.1%}, agreement last "
                  f"frame {min(r[3] for r in mine):.1%}-{max(r[3] for r in mine):.1%}, all frames "
                  f"{min(r[4] for r in mine):.1%}-{max(r[4] for r in mine):.1%} "
                  f"(mean {np.mean([r[4] for r in mine]):.2%})")


if __name__ == "__main__":
    app.run(main)
