"""Exports a MoViNet as a SavedModel for serving with `tf.saved_model.load`.

    # A trained model: the run folder alone (its config.yaml is the config):
    python export/export_saved_model.py --checkpoint /tmp/run --output /tmp/a0_sm
    # Random weights, for a quick look at the signatures:
    python export/export_saved_model.py --model_id a0 --stream --num_classes 10 --output /tmp/sm

Signatures: serving_default (float clip [B, T, H, W, 3] in [0, 1] -> logits,
probabilities, top_k_labels, top_k_probs), serving_uint8 (the same for uint8),
and for stream models init_states and call. See docs/export.md.

--overwrite replaces only an existing SavedModel or an empty folder; the new
one is written beside it and swapped in. Errors are one line (exit status 2);
--verbose shows TensorFlow's log lines and tracebacks.
"""
from movinet_tf import cli

cli.quiet_tensorflow()  # Before TensorFlow is imported.
cli.import_tensorflow()

import os  # noqa: E402

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("config", None, "Training config (name in configs/ or YAML path).")
flags.DEFINE_string("checkpoint", None, "Checkpoint prefix or model_dir (latest checkpoint).")
flags.DEFINE_multi_string("set", [], "Config override a.b=c (repeatable).")
flags.DEFINE_string("model_id", None, "Without --config: a0..a5, t0 (random weights).")
flags.DEFINE_bool("stream", True, "Without --config: the stream variant.")
flags.DEFINE_integer("num_classes", 600, "Without --config: number of classes.")
flags.DEFINE_string("labels", None, "Text file with one class name per line (overrides the "
                    "config's class names).")
flags.DEFINE_integer("image_size", None, "Eval crop recorded for clients (default: the "
                     "config's, else 172).")
flags.DEFINE_integer("top_k", 5, "Classes in top_k_labels / top_k_probs.")
flags.DEFINE_string("output", None, "SavedModel directory to write.")
flags.DEFINE_bool("overwrite", False, "Replace an existing --output SavedModel (only a "
                  "SavedModel or an empty folder is ever replaced).")
flags.DEFINE_bool("allow_config_change", False, "Let --config/--set change model or data keys "
                  "of the run's saved config.yaml.")
flags.DEFINE_float("frame_rate", None, "Without --config: frames per second the weights were "
                   "trained at, recorded in the input contract (with a config it is "
                   "data.video_fps / data.temporal_stride).")
flags.mark_flag_as_required("output")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    from movinet_tf import export_lib
    from movinet_tf.export_lib import saved_model_export, tflite_model
    # Before any work: an --output that must not be replaced is refused at once.
    saved_model_export.check_replaceable(os.path.abspath(FLAGS.output), FLAGS.overwrite)
    loaded = export_lib.load_model(FLAGS.config, FLAGS.checkpoint, overrides=FLAGS.set,
                                   model_id=FLAGS.model_id, stream=FLAGS.stream,
                                   num_classes=FLAGS.num_classes, image_size=FLAGS.image_size,
                                   allow_config_change=FLAGS.allow_config_change)
    labels = tflite_model.read_labels(FLAGS.labels) if FLAGS.labels else loaded.labels
    if FLAGS.frame_rate is not None:
        loaded.set_frame_rate(FLAGS.frame_rate)
    contract = loaded.contract
    path = export_lib.export_saved_model(loaded.model, FLAGS.output, labels=labels,
                                         top_k=FLAGS.top_k, overwrite=FLAGS.overwrite,
                                         image_size=loaded.image_size,
                                         min_image_size=loaded.min_image_size,
                                         contract=contract)
    kind = "stream" if loaded.model.is_stream else "base"
    print(f"Wrote {path}: {loaded.model.name} ({kind}, {loaded.model.num_classes} classes, "
          f"{'checkpoint ' + loaded.checkpoint if loaded.checkpoint else 'random weights'}).")


if __name__ == "__main__":
    cli.run(main)
