"""Reading and running exported streaming TFLite models (LiteRT interpreter).

`TFLiteStreamer` runs a model written by `export_tflite` one frame at a time,
binding states by signature name (tensor indices are read from the signature), whichever state
layout the model was exported with, and checks every frame against the model's
input contract (shape, layout, value range; uint8 frames are scaled, and an
integer image input is quantized with its tensor's scale and zero point).
`op_counts` reads the operator list from the flatbuffer, to check that a model
uses builtin ops only, and `reduced_precision` its float16 metadata.
`TFLiteStreamer` steps with `litert_runners.BoundSignature`. This module runs on
LiteRT and numpy: it never imports TensorFlow.
"""
import collections
import json
import os

import numpy as np
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter

from movinet_tf.data.contract import InputContract
from movinet_tf.export_lib.litert_runners import SIGNATURE, BoundSignature, buffers_overlap

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
    model = schema.Model.GetRootAsModel(_read(model_path_or_bytes), 0)
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


REDUCED_PRECISION_KEY = "reduced_precision_support"


def _read(model_path_or_bytes):
    if isinstance(model_path_or_bytes, (str, os.PathLike)):
        with open(model_path_or_bytes, "rb") as f:
            return f.read()
    return bytes(model_path_or_bytes)


def reduced_precision(model_path_or_bytes):
    """The model's ``reduced_precision_support`` metadata, e.g. ``'fp16accfp16'``; None if absent.

    ``fp16accfp16`` lets the XNNPACK delegate compute and accumulate in float16
    (on CPUs with native float16 arithmetic); ``fp16accfp32`` (a plain float16
    export) asks for float32 accumulation, which XNNPACK honours by staying float32.
    """
    model = schema.Model.GetRootAsModel(_read(model_path_or_bytes), 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name().decode() == REDUCED_PRECISION_KEY:
            data = model.Buffers(entry.Buffer()).DataAsNumpy()
            return bytes(data).rstrip(b"\0").decode()
    return None


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


def image_tensor_contract(detail):
    """`(dtype, quantization)` of an image input tensor from LiteRT's tensor details."""
    dtype = np.dtype(detail["dtype"]).name
    if dtype == "float32":
        return dtype, None
    scale, zero_point = detail.get("quantization", (0.0, 0))
    if not scale:
        raise ValueError(f"The {dtype} image input has no quantization scale; cannot map "
                         "frames to it.")
    return dtype, (float(scale), int(zero_point))


def zero_states(input_details):
    """The states a stream starts from, dict name -> array, for a signature's inputs.

    Every input but ``image`` is a state, and starts at zero: a float state at 0.0,
    an integer state at its zero point (the integer code for 0.0, which is not the
    integer 0 in an int8 tensor of zero point -53, say).

    Args:
        input_details: a signature runner's ``get_input_details()``.
    """
    states = {}
    for name, detail in input_details.items():
        if name == "image":
            continue
        zero = 0
        if np.issubdtype(np.dtype(detail["dtype"]), np.integer):
            zero = detail.get("quantization", (0.0, 0))[1]
        states[name] = np.full(detail["shape"], zero, detail["dtype"])
    return states


class TFLiteStreamer:
    """Streams frames through an exported single-frame TFLite model.

    Args:
        model_path: the .tflite file.
        num_threads: CPU threads for LiteRT (XNNPACK).
        use_frame_signatures: for an ensemble file whose manifest lists
            ``frame_signatures``, run frame t through signature t mod N (one
            member's cost); False runs ``serving_default`` (both members behind
            IF ops), which gives the same logits.

    Attributes:
        image_shape: the `image` input shape, [1, 1, H, W, 3] or [1, H, W, 3].
        image_size: (H, W).
        state_names: the state inputs (same names as the outputs).
        labels: class names from ``<model>.labels.txt`` if present, else None.
        manifest: the parsed ``<model>.json`` if present, else None.
        contract: the `InputContract` (from the manifest's ``input_contract``;
            sizes only, frame rate None, for a model without one). Its dtype and
            quantization are always those of the model's own image tensor.
        states: a copy of the current states, as the next call takes them
            (dict name -> array).
        bound_signatures: the `BoundSignature` of each signature a step runs
            (frame t runs entry t mod N), bound on first use; None where buffers
            overlap and the steps go through the signature runners (the same
            numbers, slower).

    Example:
        streamer = TFLiteStreamer("model.tflite")
        for frame in frames:                     # float32 [H, W, 3] in [0, 1], or uint8 RGB
            logits = streamer.step(frame)        # [num_classes]
    """

    def __init__(self, model_path, num_threads=1, use_frame_signatures=True):
        model_path = os.fspath(model_path)
        if not os.path.isfile(model_path):
            raise FileNotFoundError(f"TFLite model {model_path!r} does not exist.")
        if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
            raise ValueError(f"num_threads is {num_threads!r}; expected an integer >= 1.")
        try:
            self.interpreter = Interpreter(model_path=model_path, num_threads=num_threads)
        except ValueError as error:
            raise ValueError(f"{model_path!r} is not a valid TFLite model ({error}).") from error
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
            absent = (["logits"] if "logits" not in outputs else []) + missing
            raise ValueError(f"{model_path!r}: outputs must be 'logits' plus every state input; "
                             f"missing {absent}.")
        labels_path = labels_path_for(model_path)
        self.labels = read_labels(labels_path) if os.path.isfile(labels_path) else None
        manifest_path = manifest_path_for(model_path)
        self.manifest = None
        if os.path.isfile(manifest_path):
            with open(manifest_path, encoding="utf-8") as f:
                self.manifest = json.load(f)
        self.contract = self._read_contract(details["image"])
        # An ensemble file lists one signature per member (``frame_signatures``): frame t
        # runs signature t mod N, one member's cost, instead of serving_default's IF ops.
        entries = (self.manifest or {}).get("frame_signatures") or []
        self.frame_runners = [
            (self.interpreter.get_signature_runner(entry["signature"]), entry["input_states"])
            for entry in entries] if use_frame_signatures else []
        # Each step writes into the tensors' own buffers and carries every state output
        # into the next call's input in place (`BoundSignature`). Should any input share
        # memory with an output, that copy could clobber a state, so the step goes
        # through the signature runners instead. Binding allocates the tensors, which
        # applies the XNNPACK delegate (LiteRT says so on stderr), so it waits for the
        # first frame: a CLI's argument errors stay one line.
        self._bound_keys = ([entry["signature"] for entry in entries] if self.frame_runners
                            else [SIGNATURE])
        self._bound = None
        self._image_dtype = np.dtype(details["image"]["dtype"])
        # An integer state (a full-integer export such as the official int8 recipe's) starts
        # at its zero point, and goes back in requantized where its output tensor has
        # another scale or zero point than its input tensor.
        output_details = self.runner.get_output_details()
        self._requantize = {}
        for name in self.state_names:
            given, taken = output_details[name], details[name]
            if (np.issubdtype(np.dtype(taken["dtype"]), np.integer) and
                    tuple(given.get("quantization", (0.0, 0))) !=
                    tuple(taken.get("quantization", (0.0, 0)))):
                self._requantize[name] = (given["quantization"], taken["quantization"],
                                          np.dtype(taken["dtype"]))
        logits_detail = output_details["logits"]
        self._logits_quantization = (None if np.dtype(logits_detail["dtype"]) == np.float32
                                     else logits_detail.get("quantization"))
        self.reset()

    @property
    def bound_signatures(self):
        """The `BoundSignature` per step entry, or None where buffers overlap (bound once)."""
        if self._bound is None:
            bound = [BoundSignature(self.interpreter, key) for key in self._bound_keys]
            ranges = []
            for entry in bound:
                ranges += entry.buffer_ranges(entry.inputs)
                ranges += entry.buffer_ranges(entry.outputs, outputs=True)
            self._bound = [] if buffers_overlap(ranges) else bound
        return self._bound or None

    def _read_contract(self, image_detail):
        dtype, quantization = image_tensor_contract(image_detail)
        manifest = self.manifest or {}
        if manifest.get("input_contract"):
            contract = InputContract.from_dict(manifest["input_contract"])
            if tuple(contract.image_size) != tuple(self.image_size):
                raise ValueError(f"The manifest's input_contract says image_size "
                                 f"{list(contract.image_size)} but the model takes "
                                 f"{list(self.image_size)}.")
        else:  # A manifest from before the contract: sizes only.
            height, width = self.image_size
            contract = InputContract(frame_rate=None, image_size=(height, width),
                                     min_image_size=int(manifest.get("min_image_size") or
                                                        max(height, width)))
        return contract.with_tensor(dtype, quantization)

    def reset(self):
        """Starts a new stream (zero states)."""
        # Where each state's latest value lives: an array of ours, or (bound, output index)
        # for one still in the buffer of the call that wrote it.
        self._latest = zero_states(self._input_details)
        self._from_output = set()   # States last written by a call (in its output's scale).
        self.frame_index = 0

    @property
    def states(self):
        """A copy of the current states as the next call takes them, dict name -> array.

        An integer state is in its input tensor's scale and zero point, whether it is
        the starting state or came out of a call at another scale.
        """
        return {name: np.array(self._state_input(name)) for name in self._latest}

    def _state_input(self, name):
        """State `name` as the next call takes it (requantized where the scales differ)."""
        value = self._latest[name]
        if name not in self._requantize or name not in self._from_output:
            return value
        (out_scale, out_zero), (in_scale, in_zero), dtype = self._requantize[name]
        real = (value.astype(np.float32) - out_zero) * np.float32(out_scale)
        info = np.iinfo(dtype)
        return np.clip(np.round(real / np.float32(in_scale)) + in_zero,
                       info.min, info.max).astype(dtype)

    def model_input(self, frame):
        """One frame -> the array the model's image tensor takes (checked, scaled, quantized).

        Args:
            frame: `[H, W, 3]` RGB (or already the image tensor's shape): float
                in the contract's value range, or uint8 0..255 (scaled to the
                value range here).

        Raises:
            ValueError: a wrong shape or layout (e.g. CHW), or float values
                outside the value range (such as 0..255 floats) or not finite.
        """
        frame = np.asarray(frame)
        height, width = self.image_size
        if frame.shape not in ((height, width, 3), self.image_shape):
            hint = " (channels first? frames are [H, W, 3])" if frame.shape == (3, height,
                                                                              width) else ""
            raise ValueError(f"frame has shape {frame.shape}{hint}; this model takes "
                             f"[{height}, {width}, 3] RGB frames.")
        low, high = self.contract.value_range
        if frame.dtype == np.uint8:
            real = frame.astype(np.float32) * np.float32((high - low) / 255.0) + np.float32(low)
        elif np.issubdtype(frame.dtype, np.floating):
            real = frame.astype(np.float32, copy=False)
            lowest, highest = float(real.min()), float(real.max())
            tolerance = 1e-3 * (high - low)
            if not (np.isfinite(lowest) and np.isfinite(highest)):
                raise ValueError("frame holds NaN or infinite values.")
            if lowest < low - tolerance or highest > high + tolerance:
                raise ValueError(f"frame values span [{lowest:g}, {highest:g}]; this model takes "
                                 f"floats in [{low:g}, {high:g}] (pass uint8 frames to have them "
                                 "scaled).")
        else:
            raise ValueError(f"frame has dtype {frame.dtype}; expected uint8 or float32 RGB.")
        real = real.reshape(self.image_shape)
        if self.contract.quantization is None:
            return real
        scale, zero_point = self.contract.quantization
        info = np.iinfo(self._image_dtype)
        quantized = np.round(real / np.float32(scale)) + zero_point
        return np.clip(quantized, info.min, info.max).astype(self._image_dtype)

    def step(self, frame):
        """Feeds one frame (see `model_input`); returns float32 logits [num_classes]."""
        return self.advance(self.model_input(frame))

    def advance(self, image):
        """Feeds one `model_input` array (the image tensor's shape and dtype, unchecked)."""
        bound_signatures = self.bound_signatures
        if bound_signatures is not None:
            bound = bound_signatures[self.frame_index % len(bound_signatures)]
            bound.write("image", image)
            for name in bound.inputs:
                if name != "image":
                    bound.write(name, self._state_input(name))
            bound.invoke()
            for name in bound.outputs:
                if name != "logits":   # A member's signature returns only what it changes.
                    self._latest[name] = bound.output_views[name]   # A kept view, copied in next call.
                    self._from_output.add(name)
            logits = bound.read("logits").reshape(-1)
        else:
            if self.frame_runners:
                runner, names = self.frame_runners[self.frame_index % len(self.frame_runners)]
            else:
                runner, names = self.runner, self.state_names
            outputs = runner(image=image, **{name: self._state_input(name) for name in names})
            logits = np.asarray(outputs.pop("logits")).reshape(-1)
            self._latest.update(outputs)
            self._from_output.update(outputs)
        self.frame_index += 1
        if self._logits_quantization is not None:   # An integer output: back to real logits.
            scale, zero_point = self._logits_quantization
            return (logits.astype(np.float32) - zero_point) * np.float32(scale)
        return logits.astype(np.float32)

    def run(self, frames):
        """Streams frames [T, H, W, 3] from fresh states; returns logits [T, N]."""
        self.reset()
        return np.stack([self.step(frame) for frame in frames])
