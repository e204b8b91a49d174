"""Where the time of a streaming TFLite model goes: per op type, and what XNNPACK leaves out.

    python benchmarks/tflite_profile.py                        # A0-Stream 172x172, ~10 min
    python benchmarks/tflite_profile.py --modes none,int8 --image_size 56
    python benchmarks/tflite_profile.py --model /tmp/a0.tflite # one existing file

For each export mode it prints, on the LiteRT interpreter with its default
XNNPACK delegate:

* **partitions**: the number of DELEGATE nodes the interpreter builds (each is
  one XNNPACK subgraph; every boundary between two of them is a hand-over to the
  built-in kernels and back), and the ops that run **outside** XNNPACK, by type.
  Both are read from the interpreter itself, not from a list of what XNNPACK is
  documented to support: the model is loaded twice, once as it runs and once
  with ``experimental_disable_delegate_node_fusion`` (every delegated op becomes
  its own DELEGATE node, so matching each node's outputs to the op that produces
  them tells which ops were taken). This is what the delegate's INFO line
  "Replacing N out of M node(s) with delegate ... yielding P partitions" would
  say, without depending on log levels.
* **time per op type**: each op is cut out of the model into a one-op model
  (its own tensors and constant buffers, the rest dropped), run by the same
  interpreter and delegate with random inputs, and timed (median of `--repeats`
  invokes); the table sums them by type. The sum is compared with the whole
  model's time (the difference is the per-node hand-over and the interpreter's
  own work, plus cache effects an isolated op does not see).

`--threads` sets the interpreter's (and so XNNPACK's) thread count. The machine
is shared: read ratios within one run, not absolute figures across runs.
"""
import collections
import copy
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("model_id", "a0", "Architecture to export (random weights).")
flags.DEFINE_integer("image_size", 172, "Frame side.")
flags.DEFINE_list("modes", ["none", "int8"], "Export modes (see export_tflite's quantize).")
flags.DEFINE_string("model", None, "Profile this .tflite instead of exporting.")
flags.DEFINE_integer("threads", 1, "Interpreter threads.")
flags.DEFINE_integer("repeats", 30, "Timed invokes per isolated op.")
flags.DEFINE_integer("runs", 200, "Timed calls of the whole model.")


def _interpreter(model_path=None, model_content=None, threads=1, fuse=True):
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_path=model_path, model_content=model_content,
                              num_threads=threads,
                              experimental_disable_delegate_node_fusion=not fuse)
    interpreter.allocate_tensors()
    return interpreter


def delegation(model_path, threads=1):
    """How the XNNPACK delegate takes a model, read from the interpreter.

    Returns:
        dict with ``partitions`` (DELEGATE nodes when run normally), ``ops`` (op
        count of the model's main subgraph), ``delegated`` and ``outside``
        (collections.Counter op type -> count).
    """
    fused = _interpreter(model_path, threads=threads)
    partitions = sum(op["op_name"] == "DELEGATE" for op in fused._get_ops_details())
    single = _interpreter(model_path, threads=threads, fuse=False)
    details = single._get_ops_details()
    original = [op for op in details if op["op_name"] != "DELEGATE"]
    producer = {}
    for op in original:
        for tensor in op["outputs"]:
            producer[int(tensor)] = op["index"]
    taken = set()
    for op in details:
        if op["op_name"] == "DELEGATE":
            taken.update(producer[int(t)] for t in op["outputs"] if int(t) in producer)
    delegated = collections.Counter(op["op_name"] for op in original if op["index"] in taken)
    outside = collections.Counter(op["op_name"] for op in original if op["index"] not in taken)
    return {"partitions": partitions, "ops": len(original), "delegated": delegated,
            "outside": outside}


def _one_op_models(model_path):
    """Yields (op type, flatbuffer bytes of a model holding only that op) per op of subgraph 0."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils
    with open(model_path, "rb") as f:
        model = flatbuffer_utils.read_model_from_bytearray(bytearray(f.read()))
    graph = model.subgraphs[0]
    for op in graph.operators:
        name = flatbuffer_utils.opcode_to_name(model, op.opcodeIndex)
        used = [t for t in list(op.inputs) + list(op.outputs) if t >= 0]
        order = list(dict.fromkeys(used))
        remap = {old: new for new, old in enumerate(order)}
        tensors, buffers = [], [schema.BufferT()]
        for old in order:
            tensor = copy.copy(graph.tensors[old])
            buffer = model.buffers[tensor.buffer]
            if buffer.data is not None and len(buffer.data):
                buffers.append(buffer)
                tensor.buffer = len(buffers) - 1
            else:
                tensor.buffer = 0
            tensors.append(tensor)
        sub = schema.SubGraphT()
        sub.tensors = tensors
        new_op = copy.copy(op)
        new_op.inputs = [remap[t] if t >= 0 else -1 for t in op.inputs]
        new_op.outputs = [remap[t] for t in op.outputs]
        sub.operators = [new_op]
        sub.inputs = [remap[t] for t in dict.fromkeys(op.inputs)
                      if t >= 0 and tensors[remap[t]].buffer == 0]
        sub.outputs = [remap[t] for t in op.outputs]
        one = schema.ModelT()
        one.version = model.version
        one.operatorCodes = model.operatorCodes
        one.subgraphs = [sub]
        one.buffers = buffers
        yield name, bytes(flatbuffer_utils.convert_object_to_bytearray(one))


def _fill(interpreter, rng):
    for detail in interpreter.get_input_details():
        dtype = detail["dtype"]
        shape = detail["shape"]
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            value = rng.integers(max(info.min, -100), min(info.max, 100), shape).astype(dtype)
        else:
            value = rng.uniform(-1, 1, shape).astype(dtype)
        interpreter.set_tensor(detail["index"], value)


def op_times(model_path, threads=1, repeats=30):
    """Median ms of each op run alone: dict op type -> (count, total ms)."""
    rng = np.random.default_rng(0)
    totals = collections.defaultdict(lambda: [0, 0.0])
    for name, content in _one_op_models(model_path):
        interpreter = _interpreter(model_content=content, threads=threads)
        _fill(interpreter, rng)
        for _ in range(3):
            interpreter.invoke()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            interpreter.invoke()
            times.append(time.perf_counter() - start)
        totals[name][0] += 1
        totals[name][1] += 1000.0 * float(np.median(times))
    return {name: tuple(value) for name, value in totals.items()}


def model_time(model_path, threads=1, runs=200):
    """Median ms of one invoke of the whole model (inputs set once, random)."""
    interpreter = _interpreter(model_path, threads=threads)
    _fill(interpreter, np.random.default_rng(1))
    for _ in range(10):
        interpreter.invoke()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        interpreter.invoke()
        times.append(time.perf_counter() - start)
    return 1000.0 * float(np.median(times))


def _export(work_dir, mode):
    import movinet_tf
    from movinet_tf.export_lib import default_calibration_videos, export_tflite
    model = movinet_tf.build_model(FLAGS.model_id, stream=True, num_classes=600)
    size = FLAGS.image_size
    model(np.zeros([1, 1, size, size, 3], np.float32))
    path = os.path.join(work_dir, f"{FLAGS.model_id}_{mode}.tflite")
    calibration = None
    if mode.startswith("int8"):
        calibration = default_calibration_videos(size, num_videos=2, num_frames=8)
    export_tflite(model, path, image_size=size, quantize=mode, calibration_videos=calibration)
    return path


def profile(label, path):
    info = delegation(path, FLAGS.threads)
    whole = model_time(path, FLAGS.threads, FLAGS.runs)
    per_type = op_times(path, FLAGS.threads, FLAGS.repeats)
    outside = ", ".join(f"{n} {c}" for n, c in info["outside"].most_common()) or "none"
    print(f"\n## {label}: {info['ops']} ops, {info['partitions']} XNNPACK partition(s); "
          f"outside XNNPACK: {outside}")
    total = sum(ms for _, ms in per_type.values())
    print(f"whole model {whole:.3f} ms per invoke; ops run one by one sum to {total:.3f} ms "
          f"({FLAGS.threads} thread{'s' * (FLAGS.threads > 1)})")
    print("| op | count | outside XNNPACK | ms (isolated) | share |")
    print("|---|---|---|---|---|")
    for name, (count, ms) in sorted(per_type.items(), key=lambda kv: -kv[1][1]):
        print(f"| {name} | {count} | {info['outside'].get(name, 0)} | {ms:.3f} | "
              f"{ms / total:.0%} |")
    sys.stdout.flush()


def main(argv):
    del argv
    if FLAGS.model:
        profile(FLAGS.model, FLAGS.model)
        return
    work_dir = tempfile.mkdtemp(prefix="tflite_profile_")
    paths = {}
    for mode in FLAGS.modes:
        print(f"exporting {FLAGS.model_id}-stream {mode} ...", flush=True)
        paths[mode] = _export(work_dir, mode)
    for mode, path in paths.items():
        profile(f"{FLAGS.model_id}-stream {FLAGS.image_size}x{FLAGS.image_size} {mode}", path)
    print(f"\nmodels in {work_dir}")


if __name__ == "__main__":
    app.run(main)
