"""Reading and running exported streaming TFLite models (LiteRT interpreter).

`TFLiteStreamer` runs a model written by `export_tflite` one frame at a time,
binding states by signature name (never by raw tensor index), whichever state
layout the model was exported with. `op_counts` reads the operator list from the
flatbuffer, to check that a model uses builtin ops only.
"""
import collections
import json
import os

import numpy as np
from ai_edge_litert.interpreter import Interpreter
from tensorflow.lite.python import schema_py_generated as schema

SIGNATURE = "serving_default"

_BUILTIN_NAMES = {code: name for name, code in vars(schema.BuiltinOperator).items()
                  if not name.startswith("_")}


def op_counts(model_path_or_bytes):
    """Counts the operators of a .tflite model by type.

    Args:
        model_path_or_bytes: a path, or the flatbuffer bytes.

    Returns:
        collections.Counter name -> count. Builtin ops by their schema name
        (``CONV_2D``); custom ops (Flex / Select-TF included) as
        ``CUSTOM:<custom code>``, e.g. ``CUSTOM:FlexConv3D``.
    """
    data = model_path_or_bytes
    if isinstance(data, (str, os.PathLike)):
        with open(data, "rb") as f:
            data = f.read()
    model = schema.Model.GetRootAsModel(data, 0)
    names = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        name = _BUILTIN_NAMES.get(builtin, f"UNKNOWN_{builtin}")
        if name == "CUSTOM":
            custom = code.CustomCode()
            name = "CUSTOM:" + (custom.decode() if custom else "?")
        names.append(name)
    counts = collections.Counter()
    for s in range(model.SubgraphsLength()):
        graph = model.Subgraphs(s)
        for i in range(graph.OperatorsLength()):
            counts[names[graph.Operators(i).OpcodeIndex()]] += 1
    return counts


def manifest_path_for(model_path):
    """``model.tflite`` -> ``model.json``."""
    return os.path.splitext(os.fspath(model_path))[0] + ".json"


def labels_path_for(model_path):
    """``model.tflite`` -> ``model.labels.txt``."""
    return os.path.splitext(os.fspath(model_path))[0] + ".labels.txt"


def read_labels(path):
    """One class name per line (the trailing newline is optional)."""
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.rstrip("\n")]


class TFLiteStreamer:
    """Streams frames through an exported single-frame TFLite model.

    Args:
        model_path: the .tflite file.
        num_threads: CPU threads for LiteRT (XNNPACK).

    Attributes:
        image_shape: the `image` input shape, [1, 1, H, W, 3] or [1, H, W, 3].
        image_size: (H, W).
        state_names: the state inputs (same names as the outputs).
        labels: class names from ``<model>.labels.txt`` if present, else None.
        manifest: the parsed ``<model>.json`` if present, else None.

    Example:
        streamer = TFLiteStreamer("model.tflite")
        for frame in frames:                     # float32 [H, W, 3] in [0, 1]
            logits = streamer.step(frame)        # [num_classes]
    """

    def __init__(self, model_path, num_threads=1):
        model_path = os.fspath(model_path)
        if not os.path.isfile(model_path):
            raise FileNotFoundError(f"TFLite model {model_path!r} does not exist.")
        self.interpreter = Interpreter(model_path=model_path, num_threads=num_threads)
        signatures = self.interpreter.get_signature_list()
        if SIGNATURE not in signatures:
            raise ValueError(f"{model_path!r} has signatures {sorted(signatures)}; expected "
                             f"{SIGNATURE!r} (export it with export/export_tflite.py).")
        self.runner = self.interpreter.get_signature_runner(SIGNATURE)
        details = self.runner.get_input_details()
        if "image" not in details:
            raise ValueError(f"{model_path!r} has no 'image' input; inputs are {sorted(details)}.")
        self._input_details = details
        self.image_shape = tuple(int(d) for d in details["image"]["shape"])
        self.image_size = self.image_shape[-3:-1]
        self.state_names = [name for name in details if name != "image"]
        outputs = set(self.runner.get_output_details())
        missing = [name for name in self.state_names if name not in outputs]
        if "logits" not in outputs or missing:
            raise ValueError(f"{model_path!r}: outputs must be 'logits' plus every state input; "
                             f"missing {(['logits'] if 'logits' not in outputs else []) + missing}.")
        labels_path = labels_path_for(model_path)
        self.labels = read_labels(labels_path) if os.path.isfile(labels_path) else None
        manifest_path = manifest_path_for(model_path)
        self.manifest = None
        if os.path.isfile(manifest_path):
            with open(manifest_path, encoding="utf-8") as f:
                self.manifest = json.load(f)
        self.reset()

    def reset(self):
        """Starts a new stream (zero states)."""
        self.states = {name: np.zeros(d["shape"], d["dtype"])
                       for name, d in self._input_details.items() if name != "image"}

    def step(self, frame):
        """Feeds one frame; returns float32 logits [num_classes].

        Args:
            frame: float32 [H, W, 3] in [0, 1] (or already [1, 1, H, W, 3]).
        """
        frame = np.asarray(frame, np.float32)
        if frame.size != int(np.prod(self.image_shape)):
            raise ValueError(f"frame has shape {frame.shape}; this model takes "
                             f"{self.image_size[0]}x{self.image_size[1]}x3 frames.")
        outputs = self.runner(image=frame.reshape(self.image_shape), **self.states)
        logits = outputs.pop("logits")
        self.states = outputs
        return np.asarray(logits, np.float32).reshape(-1)

    def run(self, frames):
        """Streams float frames [T, H, W, 3] from fresh states; returns logits [T, N]."""
        self.reset()
        return np.stack([self.step(frame) for frame in frames])
