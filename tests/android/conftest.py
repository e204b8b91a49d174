"""Shared fixtures for the Android demo tests: tools, cached runtimes, the test model, builds.

Nothing here uses the network. The runtime libraries, bullseye's dx/android.jar and the test
clip come from the cache that `android_demo/install_build_tools.sh` fills (it calls
`android_demo/fetch_deps.sh`). Outside CI a missing cache or tool skips these tests with the
command to run; under CI (env CI set) it fails, so a broken install cannot pass as green.
The one exception is qemu-user for tests/android/test_arm64.py: where install_build_tools.sh
could not install it (it records why in <cache>/qemu-unavailable), those tests are skipped
with that reason, in CI too.

The models (random weights) and APKs are built once per session and shared: the 172 px A0 of
the JVM parity tests, and two 32 px A0 exports for the APK, arm64 and uint8 tests.
"""
import json
import os
import pathlib
import shutil
import subprocess
import zipfile

import numpy as np
import pytest

from tests.android.support import (ANDROID_DEMO, APK_TOOLS, CLIP_FRAMES, CLIP_STRIDE,
                                   DRIVER_SOURCE, HARNESS_SOURCE, IMAGE_SIZE, JAVA_HOME,
                                   NUM_CLASSES, SMALL_CLASSES, SMALL_FRAME_RATE, SMALL_SIZE,
                                   UINT8_FRAME_RATE, cache_dir, missing, run)

@pytest.fixture(scope="session")
def tools():
    needed = ["javac", "java", "gcc", "readelf", "nm"]
    absent = [t for t in needed if shutil.which(t) is None]
    if absent or not (JAVA_HOME / "include" / "jni.h").is_file():
        missing(f"tools not installed: {absent or 'jni.h'}")


@pytest.fixture(scope="session")
def host_runtime(tools):
    """liblitert-lm.so (TFLite C API) for x86_64 Linux."""
    lib = cache_dir() / "runtime" / "linux-x86_64" / "liblitert-lm.so"
    if not lib.is_file():
        missing(f"{lib} is missing")
    return lib


@pytest.fixture(scope="session")
def bikes_clip():
    clip = cache_dir() / "clips" / "bikes.mp4"
    if not clip.is_file():
        missing(f"{clip} is missing")
    return clip


@pytest.fixture(scope="session")
def host_bridge(host_runtime, tmp_path_factory):
    """The JNI bridge built with gcc for x86_64 Linux, next to the runtime it links."""
    out = tmp_path_factory.mktemp("host_bridge")
    os.symlink(host_runtime, out / "liblitert-lm.so")
    bridge = out / "libtflitejni.so"
    run(["gcc", "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror",
         f"-I{JAVA_HOME / 'include'}", f"-I{JAVA_HOME / 'include' / 'linux'}",
         ANDROID_DEMO / "jni" / "tflite_jni.c", f"-L{out}", "-llitert-lm",
         "-Wl,-rpath,$ORIGIN", "-o", bridge])
    return bridge


@pytest.fixture(scope="session")
def core_classes(tools, tmp_path_factory):
    """android_demo/core compiled for Java 8 with only the JDK on the classpath (so no
    android.* import can sneak in), plus the test harness."""
    out = tmp_path_factory.mktemp("core_classes")
    sources = sorted((ANDROID_DEMO / "core" / "src").rglob("*.java"))
    run(["javac", "--release", "8", "-Xlint:all", "-Werror", "-d", out, *sources])
    run(["javac", "--release", "8", "-cp", out, "-d", out, HARNESS_SOURCE])
    return out


@pytest.fixture(scope="session")
def harness(core_classes, host_bridge, host_runtime):
    """Runs CoreHarness with the given arguments; returns the CompletedProcess."""

    def call(*args, check=True):
        cmd = ["java", "-cp", core_classes, f"-Dmovinet.runtime={host_runtime}",
               f"-Dmovinet.bridge={host_bridge}", "CoreHarness", *args]
        if check:
            return run(cmd, timeout=300)
        return subprocess.run([str(c) for c in cmd], capture_output=True, text=True,
                              timeout=300)

    return call


@pytest.fixture(scope="session")
def stream_model(tmp_path_factory):
    """A0 stream single-frame TFLite ({IMAGE_SIZE}px, random weights) with its labels and
    manifest, written by the project's exporter (movinet_tf.export_lib.export_tflite).

    Returns:
        dict with paths 'tflite', 'labels', 'manifest' (or None), and 'labels_list'.
    """
    import movinet_tf

    out = tmp_path_factory.mktemp("stream_model")
    labels = [f"class {i:03d}" for i in range(NUM_CLASSES)]
    from helpers import randomize_weights

    model = movinet_tf.build_model("a0", stream=True, num_classes=NUM_CLASSES)
    # Random BN statistics and non-zero ReZero/positional scales, so every branch (and every
    # state) affects the logits; the gain keeps logits O(1) for an absolute tolerance.
    randomize_weights(model, seed=0, gain=1.0)
    path = out / "a0_stream.tflite"
    from movinet_tf.export_lib import export_tflite
    export_tflite(model, str(path), image_size=IMAGE_SIZE, labels=labels)
    label_files = sorted(p for p in out.iterdir() if p.suffix == ".txt")
    manifests = sorted(p for p in out.iterdir() if p.suffix == ".json")
    assert label_files, f"export wrote no labels file next to {path}: {list(out.iterdir())}"
    return {"tflite": path, "labels": label_files[0],
            "manifest": manifests[0] if manifests else None, "labels_list": labels}


@pytest.fixture(scope="session")
def clip_frames(bikes_clip):
    """Real frames: bikes.mp4 decoded by the project's OpenCV reader, every 5th of the first
    150 (6 s at 5 fps): uint8 [30, 272, 640, 3]."""
    from movinet_tf.data.video_io import read_video

    frames, fps = read_video(bikes_clip, max_frames=CLIP_FRAMES)
    assert frames.shape[1:] == (272, 640, 3) and fps == pytest.approx(25.0)
    return np.ascontiguousarray(frames[::CLIP_STRIDE])


def _export_small(out, name, labels, quantized):
    """A0 stream at SMALL_SIZE px with random weights, exported by the project's exporter:
    float32, or full-integer with uint8 image input (calibrated on 2 short builtin clips), with
    the input contract in the manifest."""
    import movinet_tf
    from helpers import randomize_weights
    from movinet_tf.data.contract import InputContract
    from movinet_tf.export_lib import export_tflite
    from movinet_tf.export_lib.tflite_export import (UINT8_INPUT_MODE,
                                                     default_calibration_videos)

    model = movinet_tf.build_model("a0", stream=True, num_classes=len(labels))
    randomize_weights(model, seed=1, gain=1.0)
    path = out / f"{name}.tflite"
    rate = UINT8_FRAME_RATE if quantized else SMALL_FRAME_RATE
    contract = InputContract(frame_rate=rate, image_size=(SMALL_SIZE, SMALL_SIZE),
                             min_image_size=SMALL_SIZE)
    if quantized:
        export_tflite(model, str(path), image_size=SMALL_SIZE, labels=labels,
                      quantize=UINT8_INPUT_MODE, contract=contract,
                      calibration_videos=default_calibration_videos(SMALL_SIZE, num_videos=2,
                                                                    num_frames=8))
    else:
        export_tflite(model, str(path), image_size=SMALL_SIZE, labels=labels, contract=contract)
    with open(out / f"{name}.json", encoding="utf-8") as f:
        manifest = json.load(f)
    return {"tflite": path, "labels": out / f"{name}.labels.txt",
            "manifest": out / f"{name}.json", "labels_list": labels,
            "contract": manifest["input_contract"]}


@pytest.fixture(scope="session")
def small_model(tmp_path_factory):
    """Float A0 stream at {SMALL_SIZE}px, {SMALL_CLASSES} classes, random weights, with its
    .labels.txt and .json (input_contract at {SMALL_FRAME_RATE} fps) beside it."""
    labels = [f"small {i}" for i in range(SMALL_CLASSES)]
    return _export_small(tmp_path_factory.mktemp("small_model"), "a0_small", labels, False)


@pytest.fixture(scope="session")
def uint8_model(tmp_path_factory):
    """The same architecture, int8 with a uint8 image input (the exporter's int8_uint8_input)."""
    labels = [f"quantized {i}" for i in range(SMALL_CLASSES)]
    return _export_small(tmp_path_factory.mktemp("uint8_model"), "a0_uint8", labels, True)


@pytest.fixture(scope="session")
def apk_toolchain(tools):
    """Checked before the (slower) model export, so a missing tool skips/fails at once."""
    absent = [t for t in APK_TOOLS if shutil.which(t) is None]
    if absent:
        missing(f"APK tools not installed: {absent}")
    needed = [cache_dir() / "tools" / "dx.jar", cache_dir() / "tools" / "android.jar",
              cache_dir() / "runtime" / "android-arm64" / "liblitert-lm.so"]
    if not all(p.is_file() for p in needed):
        missing(f"bullseye dx/android.jar or the arm64 runtime missing from {cache_dir()}")


def _built_apk(out, model, clip=None):
    path = out / "movinet-demo.apk"
    unpacked = out / "unpacked"
    with zipfile.ZipFile(path) as archive:
        archive.extractall(unpacked, [n for n in archive.namelist() if n.startswith("lib/")])
        info = archive.getinfo("assets/model.tflite")
    with open(path, "rb") as raw:
        raw.seek(info.header_offset + 26)
        name_len, extra_len = (int.from_bytes(raw.read(2), "little") for _ in range(2))
    return {"path": path, "lib": unpacked / "lib" / "arm64-v8a", "model": model, "clip": clip,
            "model_offset": info.header_offset + 30 + name_len + extra_len,
            "model_length": info.file_size}


@pytest.fixture(scope="session")
def apk(apk_toolchain, small_model, tmp_path_factory):
    """build_apk.sh as a user runs it on a fresh export: --model only (and --out, so the test
    writes nowhere in the tree); labels and manifest are found beside the model."""
    out = tmp_path_factory.mktemp("apk")
    result = run(["bash", ANDROID_DEMO / "build_apk.sh", "--model", small_model["tflite"],
                  "--out", out], timeout=600)
    built = _built_apk(out, small_model)
    built["log"] = result.stderr
    return built


@pytest.fixture(scope="session")
def apk_uint8_clip(apk_toolchain, uint8_model, bikes_clip, tmp_path_factory):
    """The uint8 model with every option given explicitly, and the clip bundled."""
    out = tmp_path_factory.mktemp("apk_uint8")
    run(["bash", ANDROID_DEMO / "build_apk.sh", "--model", uint8_model["tflite"],
         "--labels", uint8_model["labels"], "--manifest", uint8_model["manifest"],
         "--clip", bikes_clip, "--out", out], timeout=600)
    return _built_apk(out, uint8_model, bikes_clip)


def _qemu():
    for name in ("qemu-aarch64-static", "qemu-aarch64"):
        if shutil.which(name):
            return shutil.which(name)
    unavailable = cache_dir() / "qemu-unavailable"
    if unavailable.is_file():
        # install_build_tools.sh tried and apt could not install it: a real skip, even in CI.
        pytest.skip(f"qemu-user cannot be installed here: {unavailable.read_text().strip()}")
    missing("qemu-user (qemu-aarch64-static) is not installed")


# A Neoverse N1 (ARMv8.2: atomics, dotprod, fp16), the CPU that QEMU_CPU pins below. qemu-user
# shows the guest the host's /proc/cpuinfo unless the sysroot prefix has its own; XNNPACK's
# CPU detection parses it, and crashes on an x86 one.
_CPUINFO_ENTRY = """processor\t: {index}
BogoMIPS\t: 50.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm \
lrcpc dcpop asimddp ssbs
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x3
CPU part\t: 0xd0c
CPU revision\t: 1
"""


@pytest.fixture(scope="session")
def arm64(tools, tmp_path_factory):
    """Runs tests/android/arm64/bridge_driver.c, built for aarch64 Linux, under qemu-user.

    The guest sees a sysroot prefix: Debian's arm64 cross glibc (libc6-arm64-cross) and a fake
    aarch64 /proc/cpuinfo. Returns call(*args, check=True) -> CompletedProcess.
    """
    qemu = _qemu()
    glibc = pathlib.Path("/usr/aarch64-linux-gnu/lib")
    runtime = cache_dir() / "runtime" / "linux-arm64" / "liblitert-lm.so"
    if not (glibc / "ld-linux-aarch64.so.1").is_file():
        missing(f"the arm64 cross glibc ({glibc}, Debian libc6-arm64-cross) is not installed")
    if not runtime.is_file():
        missing(f"{runtime} is missing")
    if shutil.which("clang") is None:
        missing("clang is not installed")
    out = tmp_path_factory.mktemp("arm64")
    prefix = out / "sysroot"
    (prefix / "proc").mkdir(parents=True)
    os.symlink(glibc, prefix / "lib")
    (prefix / "proc" / "cpuinfo").write_text(
        "\n".join(_CPUINFO_ENTRY.format(index=i) for i in range(os.cpu_count() or 1)))
    driver = out / "bridge_driver"
    run(["clang", "--target=aarch64-linux-gnu", "-O2", "-Wall", "-Wextra", "-Werror",
         f"-I{JAVA_HOME / 'include'}", f"-I{JAVA_HOME / 'include' / 'linux'}",
         DRIVER_SOURCE, "-ldl", "-lm", "-fuse-ld=lld", "-o", driver])
    env = dict(os.environ, QEMU_CPU="neoverse-n1", QEMU_LD_PREFIX=str(prefix),
               LD_LIBRARY_PATH=str(runtime.parent))

    def call(*args, check=True):
        cmd = [qemu, driver, *args]
        if check:
            return run(cmd, env=env, timeout=300)
        return subprocess.run([str(c) for c in cmd], env=env, capture_output=True, text=True,
                              timeout=300)

    call.runtime = runtime
    return call
