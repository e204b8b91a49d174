"""Runs the official TF Model Garden MoViNet on a video, for side-by-side checks.

This script runs in its own process with ``TF_USE_LEGACY_KERAS=1``, so the
official Keras-2 code gets ``tf_keras`` while movinet_tf (Keras 3) runs in the
parent. `tests/reference/peer.py` calls it; it can also be run by hand:

    TF_USE_LEGACY_KERAS=1 python tests/reference/official_runner.py \
        --model_id=a0 --causal --stream --conv_type=2plus1d --se_type=2plus3d \
        --activation=hard_swish --gating_activation=hard_sigmoid \
        --num_classes=5 --input=video.npy --output_dir=/tmp/official_a0

What it does:
  1. Builds the official ``movinet.Movinet`` backbone and
     ``movinet_model.MovinetClassifier``.
  2. Sets every weight to deterministic random values from ``--seed`` (kernels,
     biases, BN gamma/beta/moving statistics with positive variances, and the
     ReZero and positional-encoding scales, which start at 0), unless
     ``--checkpoint`` gives weights to restore instead.
  3. Saves ``tf.train.Checkpoint(model=model)`` as Model Garden does, under
     ``OUTPUT_DIR/checkpoint/ckpt-1``.
  4. Runs the whole clip (``clip_logits.npy``, [B, num_classes]) and, with
     ``--stream`` (causal models only), the clip ``--stream_step`` frames per
     call through a model with external states built from the same
     checkpoint (``stream_logits.npy``, [num_calls, B, num_classes]: the logits
     after each call; ``final_states.npz``: the states after the last call).
  5. Writes ``states.json`` (initial state name -> shape, dtype for the input's
     [B, 1, H, W, 3]) and ``meta.json`` (config, count_params, timings).

Every output is written under a temporary name and then renamed.
"""
import argparse
import json
import os
import shutil
import sys
import time

if os.environ.get("TF_USE_LEGACY_KERAS") != "1":
    # tf_keras must be chosen before TensorFlow is imported.
    sys.exit("official_runner.py must run with TF_USE_LEGACY_KERAS=1")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402
from official.projects.movinet.modeling import movinet  # noqa: E402
from official.projects.movinet.modeling import movinet_model  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model_id", default="a0")
    parser.add_argument("--causal", action="store_true")
    parser.add_argument("--stream", action="store_true",
                        help="also run the clip through external states (needs --causal)")
    parser.add_argument("--stream_step", type=int, default=1,
                        help="frames per streaming call")
    parser.add_argument("--conv_type", default="3d", choices=["3d", "2plus1d", "3d_2plus1d"])
    parser.add_argument("--se_type", default="3d", choices=["3d", "2d", "2plus3d", "none"])
    parser.add_argument("--activation", default="swish")
    parser.add_argument("--gating_activation", default="sigmoid")
    parser.add_argument("--classifier_activation", default="swish")
    parser.add_argument("--use_positional_encoding", action="store_true")
    parser.add_argument("--num_classes", type=int, default=600)
    parser.add_argument("--input", required=True, help=".npy video, float32 [B, T, H, W, 3]")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--saved_model", action="store_true",
                        help="also write the clip model as a SavedModel (the TF Hub/Kaggle format)")
    parser.add_argument("--checkpoint", default=None,
                        help="restore these weights instead of randomising")
    args = parser.parse_args(argv)
    if args.stream and not args.causal:
        parser.error("--stream needs --causal (only causal models have states)")
    if args.stream_step < 1:
        parser.error(f"--stream_step must be >= 1, got {args.stream_step}")
    return args


def build_classifier(args, image_shape, external_states):
    """The official classifier; `image_shape` is [B, T, H, W, 3] (None allowed)."""
    backbone = movinet.Movinet(
        model_id=args.model_id,
        causal=args.causal,
        conv_type=args.conv_type,
        se_type=args.se_type,
        activation=args.activation,
        gating_activation=args.gating_activation,
        use_positional_encoding=args.use_positional_encoding,
        input_specs=tf_keras.layers.InputSpec(shape=image_shape),
        use_sync_bn=False,
        use_external_states=external_states,
        output_states=True)
    model = movinet_model.MovinetClassifier(
        backbone,
        num_classes=args.num_classes,
        input_specs={"image": tf_keras.layers.InputSpec(shape=image_shape)},
        activation=args.classifier_activation,
        output_states=external_states)
    return model


def randomize_weights(model, seed, gain=1.5):
    """Sets every weight to seeded random values, none left at 0 or identity."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        shape = tuple(weight.shape)
        name = weight.name
        if "moving_variance" in name:
            value = rng.uniform(0.5, 1.5, shape)
        elif "moving_mean" in name or "beta" in name:
            value = rng.normal(0.0, 0.1, shape)
        elif "gamma" in name:
            value = rng.uniform(0.7, 1.3, shape)
        elif len(shape) == 0:
            # ReZero and positional-encoding scales, which start at 0.
            value = rng.uniform(0.2, 0.6, shape)
        elif len(shape) == 1:
            value = rng.normal(0.0, 0.2, shape)
        else:
            # DepthwiseConv2D kernels are [kh, kw, C, 1]: the fan-in is kh * kw.
            fan_axes = shape[:-2] if "depthwise_kernel" in name else shape[:-1]
            fan_in = int(np.prod(fan_axes))
            value = rng.normal(0.0, gain / np.sqrt(max(fan_in, 1)), shape)
        weight.assign(value.astype(weight.dtype.as_numpy_dtype))


def restore_all(model, path):
    """Restores `model` from a `Checkpoint(model=...)`; every weight must be found."""
    status = tf.train.Checkpoint(model=model).read(path)
    status.assert_existing_objects_matched()
    # The checkpoint's save_counter has no counterpart here; everything else must.
    status.expect_partial()
    reader = tf.train.load_checkpoint(path)
    keys = [key for key in reader.get_variable_to_shape_map()
            if key.startswith("model/")]
    if len(keys) != len(model.weights):
        raise ValueError(f"checkpoint {path!r} has {len(keys)} model variables, "
                         f"the model has {len(model.weights)}")


def save_array(path, array):
    tmp = path + ".tmp.npy"
    np.save(tmp, array)
    os.replace(tmp, path)


def save_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def main(argv=None):
    args = parse_args(argv)
    video = np.load(args.input).astype(np.float32)
    if video.ndim != 5 or video.shape[-1] != 3:
        raise ValueError(f"--input {args.input!r} has shape {video.shape}, "
                         "expected [B, T, H, W, 3]")
    batch, frames, height, width, _ = video.shape
    os.makedirs(args.output_dir, exist_ok=True)
    meta = {"args": vars(args), "input_shape": list(video.shape)}

    start = time.perf_counter()
    clip_model = build_classifier(args, [batch, None, height, width, 3], external_states=False)
    meta["build_s"] = time.perf_counter() - start
    if args.checkpoint:
        restore_all(clip_model, args.checkpoint)
    else:
        randomize_weights(clip_model, args.seed)
    meta["count_params"] = int(clip_model.count_params())
    meta["backbone_count_params"] = int(clip_model.backbone.count_params())

    # Written to a temporary directory, renamed when complete.
    final_dir = os.path.join(args.output_dir, "checkpoint")
    tmp_dir = final_dir + ".tmp"
    for stale in (tmp_dir, final_dir):
        if os.path.exists(stale):
            shutil.rmtree(stale)
    prefix = tf.train.Checkpoint(model=clip_model).save(os.path.join(tmp_dir, "ckpt"))
    os.replace(tmp_dir, final_dir)
    meta["checkpoint"] = os.path.join(final_dir, os.path.basename(prefix))
    if args.saved_model:
        saved_dir = os.path.join(args.output_dir, "saved_model")
        if os.path.exists(saved_dir + ".tmp"):
            shutil.rmtree(saved_dir + ".tmp")
        tf.saved_model.save(clip_model, saved_dir + ".tmp")
        os.replace(saved_dir + ".tmp", saved_dir)
        meta["saved_model"] = saved_dir

    start = time.perf_counter()
    clip_logits = clip_model({"image": tf.constant(video)}, training=False)
    meta["clip_s"] = time.perf_counter() - start
    save_array(os.path.join(args.output_dir, "clip_logits.npy"), clip_logits.numpy())

    states = {}
    if args.causal:
        state_specs = clip_model.backbone.initial_state_specs([batch, 1, height, width, 3])
        states = {name: {"shape": [int(d) for d in spec.shape], "dtype": tf.as_dtype(spec.dtype).name}
                  for name, spec in state_specs.items()}
    save_json(os.path.join(args.output_dir, "states.json"), states)

    if args.stream:
        stream_model = build_classifier(
            args, [batch, None, height, width, 3], external_states=True)
        restore_all(stream_model, meta["checkpoint"])
        for ours, theirs in zip(stream_model.weights, clip_model.weights):
            if not np.array_equal(ours.numpy(), theirs.numpy()):
                raise ValueError(f"stream model weight {ours.name!r} differs from the "
                                 f"clip model's {theirs.name!r} after restoring")
        step = tf.function(lambda inputs: stream_model(inputs, training=False))
        state = stream_model.init_states([batch, 1, height, width, 3])
        stream_logits = []
        start = time.perf_counter()
        for first in range(0, frames, args.stream_step):
            chunk = video[:, first:first + args.stream_step]
            logits, state = step({**state, "image": tf.constant(chunk)})
            stream_logits.append(logits.numpy())
        meta["stream_s"] = time.perf_counter() - start
        save_array(os.path.join(args.output_dir, "stream_logits.npy"), np.stack(stream_logits))
        tmp = os.path.join(args.output_dir, "final_states.tmp.npz")
        np.savez(tmp, **{name: value.numpy() for name, value in state.items()})
        os.replace(tmp, os.path.join(args.output_dir, "final_states.npz"))

    save_json(os.path.join(args.output_dir, "meta.json"), meta)


if __name__ == "__main__":
    main()
