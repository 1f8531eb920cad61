#!/usr/bin/env bash
# Makes this checkout runnable on a fresh Debian machine: system packages when missing,
# npm dependencies, the native addon and the TypeScript build. Safe to run again; it only
# does what is missing or stale. Sourced by scripts/test.sh and scripts/demo.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { echo "[setup] $*" >&2; }

# LibTorch (the engine), OpenBLAS (without it Debian's LibTorch multiplies 50x slower) and
# PyTorch for Python (parity tests and benchmarks compare against it).
need=()
[ -n "${LIBTORCH:-}" ] || dpkg -s libtorch-dev >/dev/null 2>&1 || need+=(libtorch-dev)
dpkg -s libopenblas0-pthread >/dev/null 2>&1 || need+=(libopenblas0-pthread)
# Gloo's headers and library: the addon's c10d backend for data-parallel training on CPU.
[ -n "${LIBTORCH:-}" ] || dpkg -s libgloo-dev >/dev/null 2>&1 || need+=(libgloo-dev)
# oneDNN's headers (the library itself comes with Debian's LibTorch): linear weights packed once
# for its matmul, which makes sampling on CPU about 1.5x faster (native/src/packed_linear.h).
[ -n "${LIBTORCH:-}" ] || dpkg -s libdnnl-dev >/dev/null 2>&1 || need+=(libdnnl-dev)
if [ "${OMNI_DPO_SKIP_PYTHON_TORCH:-0}" != 1 ] && ! dpkg -s python3-torch >/dev/null 2>&1; then need+=(python3-torch); fi
# Chromium for the dashboard's browser tests (driven by playwright-core; OMNI_DPO_SKIP_BROWSER=1 skips).
if [ "${OMNI_DPO_SKIP_BROWSER:-0}" != 1 ] && [ ! -x /usr/bin/chromium ]; then need+=(chromium); fi
# Jinja2 for Python: chat templates and TRL's chat rendering are checked against it.
if [ "${OMNI_DPO_SKIP_PYTHON_TORCH:-0}" != 1 ] && ! dpkg -s python3-jinja2 >/dev/null 2>&1; then need+=(python3-jinja2); fi
# PIL for Python: image decoding and bicubic resizing are checked against it.
if [ "${OMNI_DPO_SKIP_PYTHON_TORCH:-0}" != 1 ] && ! dpkg -s python3-pil >/dev/null 2>&1; then need+=(python3-pil); fi
# strace checks that checkpoints are fsynced before their rename; iproute2's `ip` makes the network
# namespaces of the two-host training test (which also needs root).
dpkg -s strace >/dev/null 2>&1 || need+=(strace)
dpkg -s iproute2 >/dev/null 2>&1 || need+=(iproute2)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]} (apt-get)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
  # New headers can change what the addon compiles in (Gloo, oneDNN): build it again.
  rm -f native/build/Release/omni_torch.node
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

addon=native/build/Release/omni_torch.node
if [ ! -f "$addon" ] || [ -n "$(find native/src native/binding.gyp -newer "$addon" 2>/dev/null | head -1)" ]; then
  say "building the native addon (LibTorch)"
  npm run --silent build:native >/tmp/omni-dpo-native-build.log 2>&1 || { cat /tmp/omni-dpo-native-build.log >&2; exit 1; }
fi

# tsc over the whole tree takes a while on two cores: skip it when no source or setting changed
# since the last build (a fresh clone has no stamp and builds).
stamp=dist/.build-stamp
if [ ! -f "$stamp" ] || [ -n "$(find src apps test scripts tsconfig.json package.json package-lock.json -newer "$stamp" -name '*.ts' -o -newer "$stamp" -name '*.json' 2>/dev/null | head -1)" ]; then
  say "compiling TypeScript"
  mkdir -p dist
  touch "$stamp.next" # taken before tsc reads the sources, so an edit made during the build still counts as newer
  npm run --silent build
  mv "$stamp.next" "$stamp"
fi
