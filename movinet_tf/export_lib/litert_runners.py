"""Running one signature of a .tflite model on LiteRT, two ways.

`BoundSignature` runs a signature of the interpreter with its tensors allocated
once, so a caller carries states from output to input in place (what
`tflite_model.TFLiteStreamer` steps with). `CompiledRunner` runs one through
LiteRT's CompiledModel API, where the XNNPACK flags can be set: forcing float16
arithmetic shows on any CPU what a ``float16_arithmetic`` model computes on a
phone with float16 arithmetic. LiteRT and numpy only: no TensorFlow.
"""
import os

import numpy as np

from movinet_tf import cli

SIGNATURE = "serving_default"
# TfLiteXNNPackDelegateOptions flags (tflite/delegates/xnnpack/xnnpack_delegate.h): signed and
# unsigned int8 kernels (the default) and float16 inference forced for float32 operators.
XNNPACK_FLAG_QS8 = 0x1
XNNPACK_FLAG_QU8 = 0x2
XNNPACK_FLAG_FORCE_FP16 = 0x4


class BoundSignature:
    """One signature of a LiteRT interpreter, its tensors allocated once.

    The interpreter's signature runner resizes and reallocates every input on
    each call and returns a new copy of every output. For a stream model that
    means all its states (2.6 MB for A0-Stream at 172x172) allocated and copied
    twice a frame, about 0.5 ms of a 4 ms frame on a 2-core x86 VM. Here the
    caller writes inputs into the tensors' own buffers and reads outputs from
    theirs, so a state goes from the output of one call to the input of the next
    with one copy and no allocation.

    Reach LiteRT's subgraph-level calls (the Python `Interpreter` has them for
    subgraph 0 only; an ensemble file's member signatures are other subgraphs).

    The numpy views of the signature's inputs and outputs are made once, here,
    and kept (`input_views`, `output_views`): making one costs about as much as
    copying a small state, and a step touches 87 of them. They stay valid
    because nothing moves the buffers: every input and output has a static
    shape (checked here), this class never resizes, and LiteRT only moves a
    buffer when an input is resized or a tensor is dynamic. The first `invoke`
    checks that the outputs are still where the views point.

    Args:
        interpreter: a LiteRT `Interpreter`.
        signature_key: the signature to bind.

    Attributes:
        inputs, outputs: dict name -> tensor index in the signature's subgraph.
        input_details, output_details: the signature runner's tensor details.
    """

    def __init__(self, interpreter, signature_key):
        runner = interpreter.get_signature_runner(signature_key)
        self.input_details = runner.get_input_details()
        self.output_details = runner.get_output_details()
        self.inputs = {name: d["index"] for name, d in self.input_details.items()}
        self.outputs = {name: d["index"] for name, d in self.output_details.items()}
        dynamic = [name for name, d in {**self.input_details, **self.output_details}.items()
                   if -1 in tuple(d.get("shape_signature", d["shape"]))]
        if dynamic:
            raise ValueError(f"signature {signature_key!r} has tensors of dynamic shape "
                             f"{dynamic}; a bound signature needs static shapes.")
        self._wrapper = interpreter._interpreter  # pylint: disable=protected-access
        self._subgraph = self._wrapper.GetSubgraphIndexFromSignature(signature_key)
        self._wrapper.AllocateTensors(self._subgraph)
        self.input_views = {name: self.view(index) for name, index in self.inputs.items()}
        self.output_views = {name: self.view(index) for name, index in self.outputs.items()}
        self._checked = False

    def view(self, index):
        """A new numpy view of tensor `index`'s buffer."""
        return self._wrapper.tensor(self._wrapper, index, self._subgraph)

    def buffer_ranges(self, names, outputs=False):
        """[(start, end)] byte addresses of the named inputs' (or outputs') buffers."""
        views = self.output_views if outputs else self.input_views
        return [(views[name].ctypes.data, views[name].ctypes.data + views[name].nbytes)
                for name in names]

    def write(self, name, value):
        """Copies `value` into input `name`'s buffer (same shape and dtype)."""
        target = self.input_views[name]
        if value.shape != target.shape:
            raise ValueError(f"input {name!r} takes shape {list(target.shape)}, "
                             f"not {list(value.shape)}.")
        np.copyto(target, value, casting="no")

    def invoke(self):
        self._wrapper.Invoke(self._subgraph)
        if not self._checked:
            moved = [name for name, index in self.outputs.items()
                     if self.view(index).ctypes.data != self.output_views[name].ctypes.data]
            if moved:
                raise RuntimeError(f"LiteRT moved the buffers of outputs {moved} during invoke; "
                                   "this model cannot be run in place.")
            self._checked = True

    def read(self, name):
        """A copy of output `name`."""
        return np.array(self.output_views[name])


def buffers_overlap(ranges):
    """Whether any two of the [(start, end)] byte ranges share a byte."""
    ranges = sorted(ranges)
    return any(start < previous_end for (_, previous_end), (start, _) in zip(ranges, ranges[1:]))


class CompiledRunner:
    """One signature of a .tflite model on LiteRT's CompiledModel API (CPU, XNNPACK).

    Called like the interpreter's signature runner: keyword numpy inputs in, a
    dict of numpy outputs (in their shapes) out.

    Args:
        model_path: the .tflite file.
        num_threads: CPU threads.
        force_fp16: run every float32 operator XNNPACK takes in float16
            (``XNNPACK_FLAG_FORCE_FP16``). Where the CPU has no float16
            arithmetic, XNNPACK emulates it: the numbers are a phone's, the
            speed is not.
        signature: the signature key.
    """

    def __init__(self, model_path, num_threads=1, force_fp16=False, signature=SIGNATURE):
        # Deferred: the CompiledModel API loads LiteRT's accelerator registry, which the
        # interpreter path (TFLiteStreamer, the stream CLI) never needs.
        from ai_edge_litert.compiled_model import CompiledModel
        from ai_edge_litert.cpu_options import CpuOptions
        from ai_edge_litert.options import Options
        flags = XNNPACK_FLAG_QS8 | XNNPACK_FLAG_QU8
        if force_fp16:
            flags |= XNNPACK_FLAG_FORCE_FP16
        options = Options(cpu_options=CpuOptions(num_threads=num_threads, xnnpack_flags=flags))
        # LiteRT's environment logs every accelerator and plugin it tries (about 30 lines
        # from C++, whatever the log level); that is noise unless --verbose asks for it.
        with cli.quiet_native_stderr():
            self._model = CompiledModel.from_file(os.fspath(model_path), options=options)
        self._signature = signature
        self._first_run = True
        self._inputs = self._model.get_input_tensor_details(signature)
        self._outputs = self._model.get_output_tensor_details(signature)
        self._in_buffers = {name: self._model.create_input_buffer_by_name(signature, name)
                            for name in self._inputs}
        self._out_buffers = {name: self._model.create_output_buffer_by_name(signature, name)
                             for name in self._outputs}

    def get_input_details(self):
        """dict name -> {'dtype', 'shape', ...} (dtype as a numpy type)."""
        return {name: {**d, "dtype": np.dtype(d["dtype"]).type}
                for name, d in self._inputs.items()}

    def __call__(self, **inputs):
        if self._first_run:  # The first buffer write sets up (and logs) LiteRT's environment.
            self._first_run = False
            with cli.quiet_native_stderr():
                return self._run(inputs)
        return self._run(inputs)

    def _run(self, inputs):
        missing = sorted(set(self._inputs) - set(inputs))
        if missing:
            raise ValueError(f"Missing inputs {missing}.")
        for name, value in inputs.items():
            detail = self._inputs[name]
            self._in_buffers[name].write(np.ascontiguousarray(value, np.dtype(detail["dtype"])))
        self._model.run_by_name(self._signature, self._in_buffers, self._out_buffers)
        outputs = {}
        for name, detail in self._outputs.items():
            shape = [int(d) for d in detail["shape"]]
            outputs[name] = self._out_buffers[name].read(
                int(np.prod(shape)), np.dtype(detail["dtype"])).reshape(shape)
        return outputs
