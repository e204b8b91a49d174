"""Loading TF Model Garden MoViNet checkpoints into our models.

The Model Garden's released checkpoints (``movinet_a0_stream.tar.gz`` and the
like, and the checkpoints its trainer writes) are `tf.train.Checkpoint`s of
its Keras-2 ``MovinetClassifier``. Their keys follow that object graph::

    model/layer_with_weights-0/layer_with_weights-{i}/_feature/_conv/_conv/depthwise_kernel
    |     |                    |                      '-- attribute path in layer i
    |     |                    '-- i = 0 stem, 1..N block layers in order, N + 1 head
    |     '-- 0: the backbone, 1: the classifier head
    '-- the root object

TF Hub / Kaggle publish the same models as SavedModels; their ``variables/``
are a checkpoint too, keyed ``variables/<i>``, and the layer paths above are
recovered from the object graph stored with them.

`load_official_checkpoint` reads every variable with `tf.train.load_checkpoint`
and assigns it to the matching variable of our model. Kernels are reshaped
between the official layouts (Conv2D, DepthwiseConv2D, Conv3D) and ours
([kt, kh, kw, Cin/groups, Cout]); the element order is the same in all of them.
Every variable of our model must be matched, and every weight of the checkpoint
used, or the load fails with the names involved.

The matching is derived from the layers, not typed here: each layer declares
the official attribute paths of its weights (``official_weights()`` of
`CausalConv3D`, `SqueezeExcitation`, `MovinetBlock`, ...), and
`official_names` numbers them as the official model's object graph does.
"""
import os
import re

import numpy as np
import tensorflow as tf
from absl import logging

from movinet_tf.layers.conv import with_prefix

_KEY_RE = re.compile(
    r"(?:^|/)layer_with_weights-(?P<part>[01])/(?:layer_with_weights-(?P<layer>\d+)/)?"
    r"(?P<attr>_[^.]*?)/\.ATTRIBUTES/VARIABLE_VALUE$")


def official_names(model):
    """dict (part, layer index or None, attribute path) -> variable, for every weight.

    Derived from the layers' own `official_weights()`: part '0' is the backbone,
    whose layer 0 is the stem (``_stem/...``), layers 1..N the blocks in order and
    N + 1 the head conv (``_project/...``); part '1' is the classifier head.
    """
    backbone = model.backbone
    layers = ([with_prefix("_stem/", backbone.stem.official_weights())]
              + [block.official_weights() for block in backbone.blocks]
              + [with_prefix("_project/", backbone.head_project.official_weights())])
    names = {("0", str(index), path): variable
             for index, weights in enumerate(layers) for path, variable in weights.items()}
    names.update({("1", None, path): variable
                  for path, variable in model.classifier_head.official_weights().items()})
    return names


def _normal_attribute(attr):
    """An attribute path of a checkpoint key in the spelling of `official_weights`.

    The official layers nest convs (``_conv/_conv``), name depthwise kernels
    ``depthwise_kernel`` and wrap some temporal convs once more
    (``_conv_temporal/_conv``); our paths use one spelling for each.
    """
    attr = re.sub(r"(/_conv)+(?=/)", "/_conv", attr)
    attr = attr.replace("/_conv_temporal/_conv/", "/_conv_temporal/")
    return re.sub(r"/depthwise_kernel$", "/kernel", attr)


def _resolve_path(path):
    """A checkpoint prefix from a prefix, a directory, or a SavedModel dir."""
    path = os.fspath(path)
    if os.path.isdir(path):
        saved_model_variables = os.path.join(path, "variables", "variables")
        if tf.io.gfile.exists(saved_model_variables + ".index"):
            return saved_model_variables
        latest = tf.train.latest_checkpoint(path)
        if latest:
            return latest
        raise ValueError(f"No checkpoint found in directory {path!r} (no 'checkpoint' file, "
                         "no SavedModel variables).")
    if not tf.io.gfile.exists(path + ".index"):
        raise ValueError(f"Checkpoint {path!r} not found (expected {path}.index).")
    return path


# Object-graph edges that list variables a second time (SavedModel / Keras bookkeeping).
_LISTING_EDGES = frozenset({"variables", "trainable_variables", "non_trainable_variables",
                            "regularization_losses", "keras_api", "signatures"})


def _structural_keys(reader):
    """Maps layer-path keys to the keys stored in the file.

    A `tf.train.Checkpoint` of the model stores each variable under its layer path
    (``model/layer_with_weights-0/...``). A SavedModel of it (the TF Hub / Kaggle
    format) stores the same variables as ``variables/<i>/...``; their layer paths
    are recovered from the object graph saved beside them.

    Returns:
        dict: layer-path key -> key to read with `reader`.
    """
    from tensorflow.core.protobuf import trackable_object_graph_pb2  # pylint: disable=g-direct-tensorflow-import
    shapes = reader.get_variable_to_shape_map()
    if not any(key.startswith("variables/") for key in shapes):
        return {key: key for key in shapes}
    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    graph.ParseFromString(reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
    paths = {0: ""}
    queue = [0]
    while queue:  # Breadth first, weights-carrying layers before their duplicates.
        node = queue.pop(0)
        children = sorted(graph.nodes[node].children,
                          key=lambda c: not c.local_name.startswith("layer_with_weights-"))
        for child in children:
            if child.local_name in _LISTING_EDGES or child.node_id in paths:
                continue
            paths[child.node_id] = f"{paths[node]}/{child.local_name}".lstrip("/")
            queue.append(child.node_id)
    keys = {}
    for node_id, node in enumerate(graph.nodes):
        for attribute in node.attributes:
            if attribute.name == "VARIABLE_VALUE" and node_id in paths:
                keys[f"{paths[node_id]}/.ATTRIBUTES/VARIABLE_VALUE"] = attribute.checkpoint_key
    return keys


def load_official_checkpoint(model, path, skip_classifier=False):
    """Restores a TF Model Garden MoViNet checkpoint into our model.

    The model must have the checkpoint's architecture: build it with the same
    model id, variant and overrides (e.g. ``build_model('a0', stream=True)`` for
    ``movinet_a0_stream``; ``conv_type`` may be '2plus1d' or '3d_2plus1d' either
    way, since both carry the same weights).

    Args:
        model: a `MovinetClassifier` from `build_model`.
        path: a checkpoint prefix (``.../ckpt-1``), a directory with a
            ``checkpoint`` file, or a SavedModel directory (its variables).
        skip_classifier: leave the classifier head alone (to fine-tune on other
            classes); only the backbone must then match.

    Returns:
        The number of variables assigned.

    Raises:
        ValueError: if the checkpoint is missing, or the architectures differ;
            the message names the unmatched variables and shapes.
    """
    prefix = _resolve_path(path)
    reader = tf.train.load_checkpoint(prefix)
    stored = _structural_keys(reader)
    names = official_names(model)
    assigned, unused = {}, []
    for key in sorted(stored):
        match = _KEY_RE.search(key)
        if not match or "OPTIMIZER_SLOT" in key or "/optimizer/" in key:
            continue
        part, layer, attr = match.group("part"), match.group("layer"), match.group("attr")
        if part == "1" and skip_classifier:
            continue
        target = names.get((part, layer if part == "0" else None, _normal_attribute(attr)))
        if target is None:
            unused.append(key)
            continue
        value = reader.get_tensor(stored[key])
        if value.size != int(np.prod(target.shape)):
            raise ValueError(
                f"Checkpoint variable {key!r} has shape {list(value.shape)}, but our "
                f"{target.path!r} has shape {list(target.shape)}: the architectures differ "
                "(check model id, stream/base and the conv_type/se_type overrides).")
        if id(target) in assigned:
            raise ValueError(f"Two checkpoint variables map to {target.path!r}: "
                             f"{assigned[id(target)][0]!r} and {key!r}.")
        assigned[id(target)] = (key, target, value.reshape(tuple(target.shape)))
    expected = [v for v in model.weights
                if not (skip_classifier and v.path.split("/")[1:2] == ["classifier_head"])]
    missing = [v.path for v in expected if id(v) not in assigned]
    if unused or missing:
        raise ValueError(
            "Checkpoint does not match the model architecture: "
            f"{len(missing)} model variable(s) not found in the checkpoint "
            f"{missing[:5]}, {len(unused)} checkpoint variable(s) unused {unused[:5]}.")
    for _, target, value in assigned.values():
        target.assign(value.astype(target.dtype))
    logging.info("Loaded %d variables from official checkpoint %s", len(assigned), prefix)
    return len(assigned)
