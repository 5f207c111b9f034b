#!/usr/bin/env bash
# Sets up LibTorch for `cargo build --features tch`, from PyPI.
#
#   scripts/setup-libtorch.sh [VENV]        # VENV defaults to .venv-libtorch
#   SORA_TORCH_VENV=/path/to/venv scripts/setup-libtorch.sh   # reuse a venv that has torch
#
# Installs torch==2.9.0 (the version tch 0.22.0 is built for) into the venv unless it is already
# there, then prints and writes `libtorch.env` (in the repository root) to source before building:
#
#   source libtorch.env && cargo build --release --features tch
#
# PyPI's Linux x86-64 torch 2.9.0 wheel is the CUDA 12.8 build (about 7 GB with its nvidia-*
# wheels); there is no CPU-only wheel on PyPI. The CPU device works with it on machines without
# a GPU.
set -euo pipefail
TORCH_VERSION=2.9.0
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${SORA_TORCH_VENV:-${1:-$root/.venv-libtorch}}"
python="${PYTHON:-python3}"

torch_version() {
  "$venv/bin/python" -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null || true
}

if [ ! -x "$venv/bin/python" ]; then
  if [ -n "${SORA_TORCH_VENV:-}" ]; then
    echo "error: SORA_TORCH_VENV=$venv has no bin/python; unset it to create a venv" >&2
    exit 1
  fi
  echo "creating venv $venv" >&2
  "$python" -m venv "$venv"
fi
venv="$(cd "$venv" && pwd)"

have="$(torch_version)"
if [ "$have" = "$TORCH_VERSION" ]; then
  echo "torch $TORCH_VERSION already in $venv: not installing" >&2
elif [ -n "${SORA_TORCH_VENV:-}" ]; then
  echo "error: SORA_TORCH_VENV=$venv has torch '${have:-none}', need $TORCH_VERSION;" \
       "unset SORA_TORCH_VENV to create a venv with it" >&2
  exit 1
else
  echo "installing torch==$TORCH_VERSION into $venv (about 7 GB)" >&2
  "$venv/bin/python" -m pip install --disable-pip-version-check "torch==$TORCH_VERSION"
  have="$(torch_version)"
  if [ "$have" != "$TORCH_VERSION" ]; then
    echo "error: after the install, $venv has torch '${have:-none}'" >&2
    exit 1
  fi
fi

lib="$("$venv/bin/python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
full="$("$venv/bin/python" -c 'import torch; print(torch.__version__)')"
env_file="$root/libtorch.env"
cat > "$env_file" <<ENV
# LibTorch for \`cargo build --features tch\` (written by scripts/setup-libtorch.sh; torch $full).
# torch-sys asks the python first on PATH for torch's location; build.rs links the torch library
# directory into the binaries' run-time search path, so no LD_LIBRARY_PATH is needed to run them.
export LIBTORCH_USE_PYTORCH=1
export PATH="$venv/bin:\$PATH"
export LIBTORCH_LIB="$lib"
ENV
cat "$env_file"
echo "wrote $env_file: source it, then cargo build --release --features tch" >&2
