"""Exports a stream MoViNet as a single-frame streaming TFLite model (+ labels, manifest).

    python export/export_tflite.py --config a0_stream --checkpoint /tmp/run \
        --output /tmp/a0.tflite --quantize none
    python export/export_tflite.py --model_id a0 --num_classes 600 --output /tmp/a0_int8.tflite \
        --quantize int8 --image_size 172          # random weights, builtin calibration clips
    python export/export_tflite.py ... --quantize float16_arithmetic   # float16 compute on phones
    python export/export_tflite.py ... --gpu_compatible_states   # every I/O tensor <= 4-D

Writes model.tflite, model.labels.txt and model.json, then prints the state
report; for a quantized mode it also prints top-1 agreement and the max logit
error against the float model on held-out clips. See docs/export.md.

Without --calibration_videos, int8 calibrates on, and measures its agreement
on, synthetic builtin clips; a warning says so. Errors are one line (exit
status 2); --verbose shows TensorFlow's log lines and tracebacks.
"""
from movinet_tf import cli

cli.quiet_tensorflow()  # Before TensorFlow is imported.
cli.import_tensorflow()

import glob  # noqa: E402
import sys  # noqa: E402

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("config", None, "Training config (name in configs/ or YAML path).")
flags.DEFINE_string("checkpoint", None, "Checkpoint prefix or model_dir (latest checkpoint).")
flags.DEFINE_multi_string("set", [], "Config override a.b=c (repeatable).")
flags.DEFINE_string("model_id", None, "Without --config: a0..a5, t0 (random weights).")
flags.DEFINE_integer("num_classes", 600, "Without --config: number of classes.")
flags.DEFINE_string("labels", None, "Text file with one class name per line.")
flags.DEFINE_string("output", None, "The .tflite file to write.")
flags.DEFINE_enum("quantize", "none", ["none", "float16", "float16_arithmetic", "dynamic", "int8",
                                       "int8_uint8_input"],
                  "Quantization (float16_arithmetic: float16 weights, and XNNPACK may compute "
                  "in float16 where the CPU can; int8_uint8_input: int8 with a uint8 camera "
                  "image input).")
flags.DEFINE_integer("image_size", None, "Frame side (default: the config's, else 172).")
flags.DEFINE_bool("gpu_compatible_states", False, "Make every input/output at most 4-D.")
flags.DEFINE_string("calibration_videos", None,
                    "Glob of video files for int8 calibration and the agreement check "
                    "(default: clips of the builtin synthetic set).")
flags.DEFINE_integer("num_calibration_videos", 8, "Clips used to calibrate int8.")
flags.DEFINE_integer("calibration_seed", 0, "int8: seeds which frames of each calibration clip "
                     "are sampled (frame 0 and 3 random later ones).")
flags.DEFINE_integer("num_eval_videos", 4, "Held-out clips for the agreement check.")
flags.DEFINE_integer("max_frames", 32, "Frames used per calibration / evaluation clip.")
flags.DEFINE_bool("allow_config_change", False, "Let --config/--set change model or data keys "
                  "of the run's saved config.yaml.")
flags.DEFINE_float("frame_rate", None, "Without --config: frames per second the weights were "
                   "trained at, recorded in the input contract (with a config it is "
                   "data.video_fps / data.temporal_stride).")
flags.mark_flag_as_required("output")
flags.register_validator("num_calibration_videos", lambda n: n >= 1,
                         "--num_calibration_videos must be >= 1.")
flags.register_validator("num_eval_videos", lambda n: n >= 0, "--num_eval_videos must be >= 0.")
flags.register_validator("calibration_seed", lambda n: n >= 0, "--calibration_seed must be >= 0.")
flags.register_validator("max_frames", lambda n: n >= 1, "--max_frames must be >= 1.")


def _read_clips(pattern, image_size, min_image_size, max_frames):
    from movinet_tf.data import VideoDecodeError, preprocess_eval_frames, read_video
    paths = sorted(glob.glob(pattern))
    if not paths:
        raise cli.UserError(f"--calibration_videos {pattern!r} matches no file.")
    clips = []
    for path in paths:
        try:
            frames = read_video(path, max_frames=max_frames)[0]
        except VideoDecodeError as error:
            raise cli.UserError(f"--calibration_videos: {error}") from error
        clips.append(preprocess_eval_frames(frames, image_size, max(min_image_size, image_size)))
    return clips


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    from movinet_tf import export_lib
    from movinet_tf.export_lib import quantize, tflite_model
    loaded = export_lib.load_model(FLAGS.config, FLAGS.checkpoint, overrides=FLAGS.set,
                                   model_id=FLAGS.model_id, stream=True,
                                   num_classes=FLAGS.num_classes, image_size=FLAGS.image_size,
                                   allow_config_change=FLAGS.allow_config_change)
    labels = tflite_model.read_labels(FLAGS.labels) if FLAGS.labels else loaded.labels
    if FLAGS.frame_rate is not None:
        loaded.set_frame_rate(FLAGS.frame_rate)
    contract = loaded.contract
    size = loaded.image_size
    calibration = evaluation = None
    if FLAGS.quantize != "none":
        wanted = FLAGS.num_calibration_videos + FLAGS.num_eval_videos
        if FLAGS.calibration_videos:
            clips = _read_clips(FLAGS.calibration_videos, size, loaded.min_image_size,
                                FLAGS.max_frames)
            if len(clips) < 2:
                raise cli.UserError("--calibration_videos needs at least 2 videos: some to "
                                     "calibrate, some held out to measure agreement.")
            held_out = max(1, min(FLAGS.num_eval_videos, len(clips) // 4))
            calibration, evaluation = clips[:-held_out], clips[-held_out:]
        else:
            if FLAGS.quantize == "int8":
                print("warning: no --calibration_videos: int8 is calibrated on synthetic builtin "
                      "clips, and the agreement below is measured on them too, not on your "
                      "videos; pass --calibration_videos 'DIR/*.mp4' for a figure that holds.",
                      file=sys.stderr, flush=True)
            clips = quantize.default_calibration_videos(size, num_videos=wanted,
                                                             num_frames=FLAGS.max_frames)
            calibration = clips[:FLAGS.num_calibration_videos]
            evaluation = clips[FLAGS.num_calibration_videos:]
    result = export_lib.export_tflite(
        loaded.model, FLAGS.output, image_size=size, quantize=FLAGS.quantize, labels=labels,
        calibration_videos=calibration, gpu_compatible_states=FLAGS.gpu_compatible_states,
        min_image_size=loaded.min_image_size, contract=contract,
        calibration_seed=FLAGS.calibration_seed)
    print(f"Wrote {result.model_path} ({result.size_bytes / 1e6:.2f} MB, {FLAGS.quantize}), "
          f"{result.labels_path}, {result.manifest_path}")
    print(f"States: {result.num_states} tensors, {result.state_bytes} bytes "
          f"({result.state_bytes / 2**20:.2f} MiB) in each direction per frame; layout "
          f"{result.manifest['state_layout']}.")
    print("Ops: " + ", ".join(f"{name} {count}" for name, count in
                              sorted(result.op_counts.items(), key=lambda kv: -kv[1])))
    if evaluation:
        kind = "" if FLAGS.calibration_videos else "synthetic "
        # A float16_arithmetic model is also run with XNNPACK's float16 forced: what it
        # computes on a CPU with float16 arithmetic (this one may stay float32).
        runs = [(False, "")]
        if FLAGS.quantize == quantize.FLOAT16_ARITHMETIC_MODE:
            runs.append((True, " (float16 arithmetic forced)"))
        for force_fp16, how in runs:
            quality = export_lib.compare_with_float(loaded.model, result.model_path, evaluation,
                                                    force_fp16=force_fp16)
            print(f"Against the float model on {quality['num_clips']} held-out {kind}clips "
                  f"({quality['num_frames']} frames){how}: top-1 agreement "
                  f"{quality['top1_agreement_final']:.1%} at the last frame, "
                  f"{quality['top1_agreement_frames']:.1%} over all frames; max |logit error| "
                  f"{quality['max_logit_error']:.4f}, mean {quality['mean_logit_error']:.4f}.")


if __name__ == "__main__":
    cli.run(main)
