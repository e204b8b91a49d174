"""Dumps the official MoViNet checkpoint keys, Keras weight names and state specs.

Run with the official code installed and tf_keras as the Keras in use:

    TF_USE_LEGACY_KERAS=1 python tests/reference/dump_official_keys.py --out_dir DIR

For each configuration it writes `DIR/<config>.txt` with, per variable, the
`tf.train.Checkpoint(model=model)` key, its shape and dtype, and the Keras
weight name it belongs to (matched by writing a distinct value into every
variable before saving), followed by `count_params` and the initial state specs.
"""

import argparse
import json
import os
import tempfile

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from official.projects.movinet.modeling import movinet  # noqa: E402
from official.projects.movinet.modeling import movinet_model  # noqa: E402

CONFIGS = {
    "a0_base": dict(model_id="a0", causal=False, conv_type="3d", se_type="3d",
                    activation="swish", gating_activation="sigmoid",
                    use_positional_encoding=False, image_size=172),
    "a0_stream": dict(model_id="a0", causal=True, conv_type="2plus1d",
                      se_type="2plus3d", activation="hard_swish",
                      gating_activation="hard_sigmoid",
                      use_positional_encoding=False, image_size=172),
    "a3_stream_posenc": dict(model_id="a3", causal=True, conv_type="2plus1d",
                             se_type="2plus3d", activation="hard_swish",
                             gating_activation="hard_sigmoid",
                             use_positional_encoding=True, image_size=256),
    "a0_3d_2plus1d": dict(model_id="a0", causal=True, conv_type="3d_2plus1d",
                          se_type="2plus3d", activation="hard_swish",
                          gating_activation="hard_sigmoid",
                          use_positional_encoding=False, image_size=172),
}


def build(cfg, num_classes):
    backbone = movinet.Movinet(
        model_id=cfg["model_id"], causal=cfg["causal"],
        conv_type=cfg["conv_type"], se_type=cfg["se_type"],
        activation=cfg["activation"],
        gating_activation=cfg["gating_activation"],
        use_positional_encoding=cfg["use_positional_encoding"],
        use_sync_bn=False)
    model = movinet_model.MovinetClassifier(
        backbone, num_classes=num_classes, activation=cfg["activation"])
    model.build([1, 1, cfg["image_size"], cfg["image_size"], 3])
    return model


def dump(name, cfg, out_dir, num_classes):
    model = build(cfg, num_classes)
    # Give every variable a distinct constant so checkpoint keys can be matched
    # back to Keras weight names by value.
    for index, variable in enumerate(model.weights):
        variable.assign(tf.fill(variable.shape, tf.cast(index + 1, variable.dtype)))
    with tempfile.TemporaryDirectory() as tmp:
        path = tf.train.Checkpoint(model=model).write(os.path.join(tmp, "ckpt"))
        reader = tf.train.load_checkpoint(path)
        keys = tf.train.list_variables(path)
        rows = []
        for key, shape in keys:
            if "OBJECT_GRAPH" in key or key == "save_counter/.ATTRIBUTES/VARIABLE_VALUE":
                rows.append((key, shape, "-", "-"))
                continue
            value = np.asarray(reader.get_tensor(key))
            dtype = reader.get_variable_to_dtype_map()[key].name
            index = int(value.flat[0]) - 1 if value.size else -1
            weight = model.weights[index].name if 0 <= index < len(model.weights) else "?"
            rows.append((key, shape, dtype, weight))
    shape = [1, 1, cfg["image_size"], cfg["image_size"], 3]
    states = model.backbone.initial_state_specs(shape) if cfg["causal"] else {}
    with open(os.path.join(out_dir, name + ".txt.tmp"), "w") as f:
        f.write(f"# config {name}: {json.dumps(cfg)} num_classes={num_classes}\n")
        f.write(f"# count_params {model.count_params()}  trainable "
                f"{int(sum(np.prod(w.shape) for w in model.trainable_weights))}  "
                f"backbone {model.backbone.count_params()}  "
                f"checkpoint_keys {len(rows)}  keras_weights {len(model.weights)}\n")
        f.write("# columns: checkpoint_key<TAB>shape<TAB>dtype<TAB>keras_weight_name\n")
        for key, var_shape, dtype, weight in rows:
            f.write(f"{key}\t{list(var_shape)}\t{dtype}\t{weight}\n")
        f.write(f"# initial_state_specs for input {shape}: {len(states)} states\n")
        for state_name, spec in sorted(states.items()):
            f.write(f"# state\t{state_name}\t{list(spec.shape)}\t{spec.dtype}\n")
    os.replace(os.path.join(out_dir, name + ".txt.tmp"),
               os.path.join(out_dir, name + ".txt"))
    print(name, model.count_params(), len(rows), len(states), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out_dir", required=True)
    parser.add_argument("--num_classes", type=int, default=600)
    parser.add_argument("--configs", default=",".join(CONFIGS))
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    for name in args.configs.split(","):
        dump(name, CONFIGS[name], args.out_dir, args.num_classes)


if __name__ == "__main__":
    main()
