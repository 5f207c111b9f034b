#!/usr/bin/env bash
# The LibTorch test run: sets LibTorch up (scripts/setup-libtorch.sh), builds Sora with
# `--features tch` in its own target directory (`target-tch`, so the default build is not
# disturbed), runs clippy on that build, the backend parity suite (flex, ndarray and LibTorch's
# CPU device), the device and doctor tests, and `sora doctor` with no LD_LIBRARY_PATH.
#
#   scripts/test-tch.sh                                   # creates .venv-libtorch (~7 GB)
#   SORA_TORCH_VENV=/path/to/venv scripts/test-tch.sh     # reuses a venv with torch 2.9.0
#
# `.ci/run` calls it when SORA_TEST_TCH=1. The cold build takes about 13 minutes on 2 cores.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR_TCH:-$root/target-tch}"
start=$(date +%s)
step() { echo; echo "=== tch: $* ($(( $(date +%s) - start ))s)"; }

step "LibTorch set-up"
scripts/setup-libtorch.sh "${1:-}" >/dev/null
# shellcheck source=/dev/null
source "$root/libtorch.env"
echo "torch libraries: $LIBTORCH_LIB"

step "build --features tch"
cargo build --release --features tch --bin sora

step "run-time search path (no LD_LIBRARY_PATH needed)"
readelf -d "$CARGO_TARGET_DIR/release/sora" | grep -E 'RPATH|RUNPATH' | grep -F "$LIBTORCH_LIB"

step "sora doctor, with LD_LIBRARY_PATH unset"
env -u LD_LIBRARY_PATH "$CARGO_TARGET_DIR/release/sora" doctor
env -u LD_LIBRARY_PATH "$CARGO_TARGET_DIR/release/sora" doctor --device tch

step "tests: backend parity, devices, doctor"
cargo test --release --features tch --test backends -- --nocapture --test-threads 1
cargo test --release --features tch --lib -- device doctor
cargo test --release --features tch --test cli

step "clippy --features tch"
cargo clippy --release --workspace --all-targets --features tch -- -D warnings

step "done"
