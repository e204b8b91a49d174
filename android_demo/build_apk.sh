#!/usr/bin/env bash
# Builds a signed, aligned APK of the MoViNet streaming demo, offline: no Gradle, no Google
# Maven. Tools: Debian's aapt, zipalign, apksigner, clang/lld and the JDK; bullseye's dx and
# android.jar (API 23 stubs) and the LiteRT runtime for Android arm64, both fetched into the
# cache by fetch_deps.sh (the only step that uses the network, and only on a cold cache).
#
# Usage:
#   android_demo/build_apk.sh --model path/to/a0_stream.tflite \
#       [--labels labels.txt] [--manifest manifest.json] [--clip clip.mp4] \
#       [--out android_demo/build] [--keystore path.jks]
#
# --labels and --manifest default to the files the exporter writes next to the model:
# X.labels.txt and X.json for --model X.tflite (also accepted: X.txt, X_labels.txt,
# labels.txt; X_manifest.json). Without a manifest the app uses its documented defaults
# for the input contract (5 fps, the model's own input size) and logs that it did.
# Output: $OUT/movinet-demo.apk (written under a temporary name, then renamed).
# The debug signing key is created once in the cache, so `adb install -r` can update.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ -n "${MOVINET_CACHE:-}" ]; then
  CACHE="$MOVINET_CACHE/android"
else
  CACHE="$HERE/.cache"
fi

MODEL="" LABELS="" MANIFEST="" CLIP="" OUT="$HERE/build" KEYSTORE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --model) MODEL="$2"; shift 2 ;;
    --labels) LABELS="$2"; shift 2 ;;
    --manifest) MANIFEST="$2"; shift 2 ;;
    --clip) CLIP="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --keystore) KEYSTORE="$2"; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "build_apk: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

fail() { echo "build_apk: $*" >&2; exit 1; }
log() { echo "build_apk: $*" >&2; }

[ -n "$MODEL" ] || fail "--model is required (the single-frame streaming .tflite)"
[ -f "$MODEL" ] || fail "model '$MODEL' does not exist"
model_dir="$(dirname "$MODEL")"
model_stem="$(basename "$MODEL" .tflite)"
if [ -z "$LABELS" ]; then
  for candidate in "$model_dir/$model_stem.labels.txt" "$model_dir/$model_stem.txt" \
                   "$model_dir/${model_stem}_labels.txt" "$model_dir/labels.txt"; do
    if [ -f "$candidate" ]; then LABELS="$candidate"; break; fi
  done
fi
[ -n "$LABELS" ] || fail "no labels file next to '$MODEL' (looked for $model_stem.labels.txt, \
$model_stem.txt, ${model_stem}_labels.txt, labels.txt); pass --labels"
[ -f "$LABELS" ] || fail "labels file '$LABELS' does not exist"
if [ -z "$MANIFEST" ]; then
  for candidate in "$model_dir/$model_stem.json" "$model_dir/${model_stem}_manifest.json"; do
    if [ -f "$candidate" ]; then MANIFEST="$candidate"; break; fi
  done
  [ -n "$MANIFEST" ] || log "no manifest $model_stem.json next to '$MODEL': the app will use \
its default input contract (5 fps, the model's input size)"
fi
[ -z "$MANIFEST" ] || [ -f "$MANIFEST" ] || fail "manifest '$MANIFEST' does not exist"
[ -z "$CLIP" ] || [ -f "$CLIP" ] || fail "clip '$CLIP' does not exist"

for tool in aapt zipalign apksigner clang ld.lld javac java keytool readelf; do
  command -v "$tool" >/dev/null || fail "'$tool' not found; run android_demo/install_build_tools.sh"
done

bash "$HERE/fetch_deps.sh" apk
ANDROID_JAR="$CACHE/tools/android.jar"
DX_JAR="$CACHE/tools/dx.jar"
RUNTIME="$CACHE/runtime/android-arm64/liblitert-lm.so"
JAVA_HOME_DIR="$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")"

# The lowest Android release the shipped runtime loads on: its .note.android.ident API level
# and the bionic symbol versions it needs (LIBC_N = API 24, ...). The manifest's minSdk must
# not be lower, or the app installs on phones where System.loadLibrary fails.
MIN_SDK="$(sed -n 's/.*android:minSdkVersion="\([0-9]*\)".*/\1/p' "$HERE/app/AndroidManifest.xml")"
runtime_api() {
  local note api=0 level
  note="$(readelf -nW "$1" | sed -n 's/.*description data: \([0-9a-f][0-9a-f]\) \([0-9a-f][0-9a-f]\) .*/\2\1/p' | head -n1)"
  [ -z "$note" ] || api=$((16#$note))
  for version in $(readelf -sW --dyn-syms "$1" | awk '$5 == "GLOBAL" && $7 == "UND"' \
                   | grep -o '@LIBC_[A-Z]' | sort -u); do
    case "$version" in
      @LIBC_N) level=24 ;; @LIBC_O) level=26 ;; @LIBC_P) level=28 ;; @LIBC_Q) level=29 ;;
      @LIBC_R) level=30 ;; @LIBC_S) level=31 ;; @LIBC_T) level=33 ;; @LIBC_U) level=34 ;;
      @LIBC_V) level=35 ;; *) level=99 ;;
    esac
    [ "$level" -le "$api" ] || api=$level
  done
  echo "$api"
}
NEEDED_API="$(runtime_api "$RUNTIME")"
[ "$NEEDED_API" -le "$MIN_SDK" ] || fail "the runtime $RUNTIME needs Android API $NEEDED_API \
but app/AndroidManifest.xml says minSdkVersion $MIN_SDK; raise it"

mkdir -p "$OUT"
WORK="$OUT/work"
rm -rf "$WORK"
mkdir -p "$WORK/gen" "$WORK/classes" "$WORK/dex" "$WORK/apk/lib/arm64-v8a" "$WORK/assets" \
         "$WORK/sysinc"

log "resources -> R.java"
aapt package -f -m -J "$WORK/gen" -M "$HERE/app/AndroidManifest.xml" -S "$HERE/app/res" \
  -I "$ANDROID_JAR"

log "javac (Java 8 bytecode for dx)"
find "$WORK/gen" "$HERE/app/src" "$HERE/core/src" -name '*.java' > "$WORK/sources.txt"
javac --release 8 -Xlint:-options -encoding UTF-8 -cp "$ANDROID_JAR" -d "$WORK/classes" \
  @"$WORK/sources.txt"

log "dx -> classes.dex"
java -jar "$DX_JAR" --dex --min-sdk-version="$MIN_SDK" --output="$WORK/apk/classes.dex" "$WORK/classes"

log "JNI bridge for arm64-v8a (clang/lld, no NDK: no libc, only JNI and TfLite* calls)"
# jni.h includes <stdio.h> for nothing the bridge uses; an empty one stands in.
printf '/* empty: the bridge uses no stdio */\n' > "$WORK/sysinc/stdio.h"
cp "$RUNTIME" "$WORK/apk/lib/arm64-v8a/liblitert-lm.so"
clang --target="aarch64-linux-android$MIN_SDK" -shared -fPIC -O2 -Wall -Wextra -Werror \
  -nostdlib -nostdinc -ffreestanding -fno-stack-protector \
  -isystem "$WORK/sysinc" -isystem "$(clang -print-resource-dir)/include" \
  -I"$JAVA_HOME_DIR/include" -I"$JAVA_HOME_DIR/include/linux" \
  -fuse-ld=lld -Wl,-soname,libtflitejni.so -Wl,-z,max-page-size=16384 \
  -Wl,--hash-style=both -Wl,--no-undefined-version \
  "$HERE/jni/tflite_jni.c" -L"$WORK/apk/lib/arm64-v8a" -llitert-lm \
  -o "$WORK/apk/lib/arm64-v8a/libtflitejni.so"

log "assets"
cp "$MODEL" "$WORK/assets/model.tflite"
cp "$LABELS" "$WORK/assets/labels.txt"
[ -z "$MANIFEST" ] || cp "$MANIFEST" "$WORK/assets/model_manifest.json"
[ -z "$CLIP" ] || cp "$CLIP" "$WORK/assets/clip.mp4"

log "package"
# Stored, not deflated: the model is memory-mapped from the APK, the clip is read through a
# file descriptor, and resources.arsc must be stored for targetSdk >= 30.
aapt package -f -M "$HERE/app/AndroidManifest.xml" -S "$HERE/app/res" -A "$WORK/assets" \
  -I "$ANDROID_JAR" -0 tflite -0 mp4 -0 arsc -F "$WORK/unaligned.apk"
(cd "$WORK/apk" && aapt add "$WORK/unaligned.apk" classes.dex \
  lib/arm64-v8a/libtflitejni.so lib/arm64-v8a/liblitert-lm.so >/dev/null)
zipalign -f -p 4 "$WORK/unaligned.apk" "$WORK/aligned.apk"

if [ -z "$KEYSTORE" ]; then
  KEYSTORE="$CACHE/debug.keystore"
  if [ ! -f "$KEYSTORE" ]; then
    log "creating the debug signing key $KEYSTORE"
    # A name of this build's own: two builds at once (e.g. two test workers on a fresh
    # machine) must not write one file. The first key to land is kept (mv -n), so every
    # build signs with the same key and `adb install -r` keeps working.
    key_tmp="$KEYSTORE.tmp.$$"
    rm -f "$key_tmp"
    keytool -genkeypair -keystore "$key_tmp" -storepass android -keypass android \
      -alias movinetdebug -keyalg RSA -keysize 2048 -validity 10000 \
      -dname "CN=movinet_tf demo debug" >/dev/null 2>&1
    mv -n "$key_tmp" "$KEYSTORE"
    rm -f "$key_tmp"
  fi
fi
log "sign"
apksigner sign --ks "$KEYSTORE" --ks-pass pass:android --ks-key-alias movinetdebug \
  --key-pass pass:android --out "$WORK/signed.apk" "$WORK/aligned.apk"
apksigner verify "$WORK/signed.apk"
mv "$WORK/signed.apk" "$OUT/movinet-demo.apk"
rm -f "$WORK/signed.apk.idsig"
log "wrote $OUT/movinet-demo.apk ($(stat -c %s "$OUT/movinet-demo.apk") bytes)"
