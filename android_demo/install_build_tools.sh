#!/usr/bin/env bash
# Installs the Debian tools that build_apk.sh and tests/android need.
#
# Then fills the download cache (fetch_deps.sh: bullseye's dx and android.jar,
# the LiteRT runtime for Android arm64 and x86_64 Linux, the test clip), so
# that tests/android and build_apk.sh need no network afterwards.
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

bash "$(dirname "${BASH_SOURCE[0]}")/fetch_deps.sh" all
