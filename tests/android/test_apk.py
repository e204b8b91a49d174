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
import subprocess
import zipfile

import pytest

from tests.android.support import ANDROID_DEMO, run

pytestmark = pytest.mark.usefixtures("apk_toolchain")

# Bionic symbol versions -> the API level that introduced them (bionic/libc/libc.map.txt).
LIBC_VERSION_API = {"LIBC": 0, "LIBC_N": 24, "LIBC_O": 26, "LIBC_P": 28, "LIBC_Q": 29,
                    "LIBC_R": 30, "LIBC_S": 31, "LIBC_T": 33, "LIBC_U": 34, "LIBC_V": 35}


def _android_api_needed(library):
    """(API level, reasons) a shared library needs: the API of its .note.android.ident (the
    NDK's target) and of every bionic symbol version its required (non-weak) imports name."""
    notes = run(["readelf", "-nW", library]).stdout
    needed, reasons = 0, []
    match = re.search(r"Android\s+0x[0-9a-f]+\s+NT_VERSION.*?description data: "
                      r"((?:[0-9a-f]{2} ){4})", notes)
    if match:
        needed = int.from_bytes(bytes.fromhex(match.group(1).replace(" ", "")), "little")
        reasons.append(f".note.android.ident API {needed}")
    symbols = run(["readelf", "-sW", "--dyn-syms", library]).stdout
    for line in symbols.splitlines():
        fields = line.split()
        if len(fields) < 8 or fields[6] != "UND" or fields[4] != "GLOBAL":
            continue
        version = re.search(r"@(LIBC\w*)", fields[7])
        if version:
            api = LIBC_VERSION_API[version.group(1)]
            if api > 0:
                reasons.append(f"{fields[7].split(' ')[0]} (API {api})")
            needed = max(needed, api)
    return needed, reasons


def test_signature_verifies_with_v2_and_v3(apk):
    result = run(["apksigner", "verify", "--verbose", apk["path"]])
    # Android 11+ refuses targetSdk >= 30 apps without a v2+ signature. With minSdk >= 24 every
    # supported release verifies v2, so apksigner (rightly) adds no v1 JAR signature.
    assert "Verified using v2 scheme (APK Signature Scheme v2): true" in result.stdout
    assert "Verified using v3 scheme (APK Signature Scheme v3): true" in result.stdout


def test_badging_declares_arm64_launcher_and_camera(apk):
    badging = run(["aapt", "dump", "badging", apk["path"]]).stdout
    assert "package: name='org.movinet.demo'" in badging
    assert "native-code: 'arm64-v8a'" in badging
    assert "launchable-activity: name='org.movinet.demo.MainActivity'" in badging
    assert "uses-permission: name='android.permission.CAMERA'" in badging
    target = int(re.search(r"targetSdkVersion:'(\d+)'", badging).group(1))
    assert target >= 34, f"targetSdkVersion {target}: current Android refuses old targets"


def test_min_sdk_is_what_the_shipped_libraries_need(apk):
    # The runtime is built for API 24 and imports __write_chk@LIBC_N / __fread_chk@LIBC_N
    # (bionic added them in Android 7.0): with minSdk 23 the app would install on Android 6.0
    # and fail in System.loadLibrary there.
    needed, reasons = 0, {}
    for library in sorted(apk["lib"].glob("*.so")):
        api, why = _android_api_needed(library)
        needed, reasons[library.name] = max(needed, api), why
    assert needed >= 24, reasons
    assert any("__write_chk@LIBC_N" in r for r in reasons["liblitert-lm.so"]), reasons
    badging = run(["aapt", "dump", "badging", apk["path"]]).stdout
    min_sdk = int(re.search(r"^sdkVersion:'(\d+)'", badging, re.M).group(1))
    assert min_sdk == needed, f"minSdk {min_sdk}, the libraries need {needed}: {reasons}"


def test_build_finds_labels_and_manifest_beside_the_model(apk):
    # `apk` was built with --model (and --out) only: X.labels.txt and X.json of the export.
    model = apk["model"]
    with zipfile.ZipFile(apk["path"]) as archive:
        assert archive.read("assets/labels.txt") == model["labels"].read_bytes()
        assert archive.read("assets/model_manifest.json") == model["manifest"].read_bytes()
        assert "assets/clip.mp4" not in archive.namelist()
    assert model["labels"].name.endswith(".labels.txt")


def test_build_without_labels_names_what_it_looked_for(apk_toolchain, small_model, tmp_path):
    lonely = tmp_path / "lonely.tflite"
    shutil.copy(small_model["tflite"], lonely)
    result = subprocess.run(["bash", str(ANDROID_DEMO / "build_apk.sh"), "--model", str(lonely),
                             "--out", str(tmp_path / "out")], capture_output=True, text=True)
    assert result.returncode == 1
    assert "no labels file next to" in result.stderr and "lonely.labels.txt" in result.stderr
    assert not (tmp_path / "out").exists()


def test_assets_are_stored_aligned_and_identical(apk_uint8_clip):
    apk = apk_uint8_clip
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
