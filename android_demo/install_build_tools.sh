#!/usr/bin/env bash
# Installs the Debian tools that build_apk.sh and tests/android need.
#
# Then fills the download cache (fetch_deps.sh: bullseye's dx and android.jar,
# the LiteRT runtime for Android arm64, x86_64 Linux and aarch64 Linux, the test
# clip), so that tests/android and build_apk.sh need no network afterwards.
#
# For tests/android/test_arm64.py it also installs qemu-user (to run aarch64 Linux
# code on this x86_64 machine) and Debian's arm64 cross glibc (the aarch64 sysroot
# and what clang needs to link the test's aarch64 driver). Where these packages
# cannot be installed, the script says so, writes the reason to
# <cache>/qemu-unavailable, and that test is skipped with the reason.
#
# Idempotent: packages already present are left alone and cached downloads are
# reused. Run as root, as CI does.
set -euo pipefail

PACKAGES=(
  aapt            # resources, R.java and APK packaging
  zipalign        # 4-byte alignment, page alignment of .so files
  apksigner       # v1-v3 signing and verification
  dexdump         # inspection of classes.dex (tests)
  clang lld       # cross-compiling the JNI bridge for aarch64-linux-android
  gcc             # the same bridge for x86_64 Linux (JVM tests)
  binutils        # readelf / nm (tests)
  openjdk-17-jdk-headless  # javac, java, keytool, jni.h
  unzip
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install_build_tools: all packages present"
else
  echo "install_build_tools: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}"
fi

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ -n "${MOVINET_CACHE:-}" ]; then CACHE="$MOVINET_CACHE/android"; else CACHE="$HERE/.cache"; fi
mkdir -p "$CACHE"

# aarch64 emulation for tests/android/test_arm64.py. libgcc-N-dev-arm64-cross (crtbegin.o,
# libgcc) is versioned by the release's GCC, so take the newest the archive offers.
install_qemu() {
  local libgcc
  if ! apt-cache show qemu-user-static >/dev/null 2>&1; then apt-get update; fi
  libgcc="$(apt-cache search --names-only '^libgcc-[0-9]+-dev-arm64-cross$' 2>/dev/null \
            | cut -d' ' -f1 | sort -V | tail -n1)"
  [ -n "$libgcc" ] || { echo "no libgcc-*-dev-arm64-cross package in the apt sources"; return 1; }
  local wanted=(qemu-user-static libc6-arm64-cross libc6-dev-arm64-cross "$libgcc")
  local absent=()
  for pkg in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
      || absent+=("$pkg")
  done
  [ "${#absent[@]}" -eq 0 ] && return 0
  echo "install_build_tools: installing ${absent[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${absent[@]}"
}
if install_qemu > "$CACHE/qemu-install.log" 2>&1; then
  rm -f "$CACHE/qemu-unavailable"
  echo "install_build_tools: qemu-user and the arm64 cross glibc are present"
else
  {
    echo "qemu-user / arm64 cross glibc could not be installed with apt-get:"
    tail -n 5 "$CACHE/qemu-install.log"
  } > "$CACHE/qemu-unavailable"
  echo "install_build_tools: WARNING: $(head -n1 "$CACHE/qemu-unavailable");" \
       "tests/android/test_arm64.py will be skipped (see $CACHE/qemu-install.log)" >&2
fi

bash "$HERE/fetch_deps.sh" all
