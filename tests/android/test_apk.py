"""Static checks of the APK that android_demo/build_apk.sh builds offline.

What these prove: the APK is signed and verifiable, declares what a phone needs (arm64
native code, launcher activity, camera permission, current target SDK), carries the app and
core classes as dex, stores the model so it can be memory-mapped, and its JNI bridge links
only against symbols the shipped runtime exports. What they cannot prove: that it runs on a
phone (nothing here has run on one).
"""
import hashlib
import re
import shutil
import zipfile

import pytest

from tests.android.support import ANDROID_DEMO, cache_dir, missing, run

pytestmark = pytest.mark.usefixtures("apk_toolchain")

APK_TOOLS = ["aapt", "zipalign", "apksigner", "clang", "ld.lld", "dexdump", "keytool"]


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


@pytest.fixture(scope="module")
def apk(apk_toolchain, bikes_clip, stream_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("apk")
    cmd = ["bash", ANDROID_DEMO / "build_apk.sh", "--model", stream_model["tflite"],
           "--labels", stream_model["labels"], "--clip", bikes_clip, "--out", out]
    if stream_model["manifest"] is not None:
        cmd += ["--manifest", stream_model["manifest"]]
    run(cmd, timeout=600)
    path = out / "movinet-demo.apk"
    lib_dir = out / "unpacked"
    with zipfile.ZipFile(path) as archive:
        archive.extractall(lib_dir, [n for n in archive.namelist() if n.startswith("lib/")])
    return {"path": path, "lib": lib_dir / "lib" / "arm64-v8a", "model": stream_model,
            "clip": bikes_clip}


def test_signature_verifies_with_v2(apk):
    result = run(["apksigner", "verify", "--verbose", apk["path"]])
    # Android 11+ refuses targetSdk >= 30 apps without a v2+ signature.
    assert "Verified using v1 scheme (JAR signing): true" in result.stdout
    assert "Verified using v2 scheme (APK Signature Scheme v2): true" in result.stdout


def test_badging_declares_arm64_launcher_and_camera(apk):
    badging = run(["aapt", "dump", "badging", apk["path"]]).stdout
    assert "package: name='org.movinet.demo'" in badging
    assert "native-code: 'arm64-v8a'" in badging
    assert "launchable-activity: name='org.movinet.demo.MainActivity'" in badging
    assert "uses-permission: name='android.permission.CAMERA'" in badging
    assert "sdkVersion:'23'" in badging
    target = int(re.search(r"targetSdkVersion:'(\d+)'", badging).group(1))
    assert target >= 34, f"targetSdkVersion {target}: current Android refuses old targets"


def test_assets_are_stored_aligned_and_identical(apk):
    with zipfile.ZipFile(apk["path"]) as archive:
        infos = {info.filename: info for info in archive.infolist()}
        for name in ("assets/model.tflite", "assets/clip.mp4", "resources.arsc"):
            info = infos[name]
            assert info.compress_type == zipfile.ZIP_STORED, f"{name} is compressed"
            # Data offset = local header (30 bytes) + name + extra field; zipalign -p 4.
            with open(apk["path"], "rb") as raw:
                raw.seek(info.header_offset + 26)
                name_len, extra_len = (int.from_bytes(raw.read(2), "little") for _ in range(2))
            assert (info.header_offset + 30 + name_len + extra_len) % 4 == 0, name
        model = apk["model"]
        assert (hashlib.sha256(archive.read("assets/model.tflite")).hexdigest()
                == hashlib.sha256(model["tflite"].read_bytes()).hexdigest())
        assert archive.read("assets/labels.txt") == model["labels"].read_bytes()
        if model["manifest"] is not None:
            assert archive.read("assets/model_manifest.json") == model["manifest"].read_bytes()
        assert archive.read("assets/clip.mp4") == apk["clip"].read_bytes()


def test_dex_holds_app_and_core_classes(apk):
    dump = run(["dexdump", apk["path"]]).stdout
    classes = set(re.findall(r"Class descriptor\s+: 'L([^;]+);'", dump))
    for name in ("MainActivity", "R$id", "core/StreamingClassifier", "core/Preprocess",
                 "core/TopK", "core/Labels", "core/TfLiteBridge", "core/FrameGate"):
        assert f"org/movinet/demo/{name}" in classes, name


def _dynamic_symbols(path, flag):
    out = run(["nm", "-D", flag, path]).stdout
    return {line.split()[-1] for line in out.splitlines() if line.strip()}


def test_bridge_is_arm64_with_soname_and_16k_pages(apk):
    bridge = apk["lib"] / "libtflitejni.so"
    header = run(["readelf", "-hW", bridge]).stdout
    assert re.search(r"Machine:\s+AArch64", header)
    dynamic = run(["readelf", "-dW", bridge]).stdout
    assert "Library soname: [libtflitejni.so]" in dynamic
    assert re.findall(r"Shared library: \[([^\]]+)\]", dynamic) == ["liblitert-lm.so"]
    program = run(["readelf", "-lW", bridge]).stdout
    aligns = [int(a, 16) for a in re.findall(r"^\s+LOAD\s.*\s(0x[0-9a-f]+)$", program, re.M)]
    assert aligns and all(a >= 0x4000 for a in aligns), program


def test_every_bridge_import_is_exported_by_the_runtime(apk):
    undefined = _dynamic_symbols(apk["lib"] / "libtflitejni.so", "--undefined-only")
    exported = _dynamic_symbols(apk["lib"] / "liblitert-lm.so", "--defined-only")
    assert len(undefined) >= 20 and all(s.startswith("TfLite") for s in undefined), undefined
    assert undefined <= exported, f"not exported by the runtime: {undefined - exported}"


def test_every_java_native_has_a_jni_export(apk):
    source = (ANDROID_DEMO / "core" / "src" / "org" / "movinet" / "demo" / "core"
              / "TfLiteBridge.java").read_text()
    natives = re.findall(r"\bnative\s+[\w\[\]]+\s+(\w+)\s*\(", source)
    assert len(natives) >= 10
    exported = _dynamic_symbols(apk["lib"] / "libtflitejni.so", "--defined-only")
    expected = {f"Java_org_movinet_demo_core_TfLiteBridge_{name}" for name in natives}
    assert expected <= exported, f"natives without a JNI export: {expected - exported}"
