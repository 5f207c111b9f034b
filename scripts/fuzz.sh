#!/usr/bin/env bash
# Fuzzes Sora's readers of untrusted input (docs/fuzzing.md).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]   build the targets once, run each for SECONDS
#                                           (default 60), all targets unless some are named
#   scripts/fuzz.sh --seeds                 rewrite the generated seeds of fuzz/corpus/
#   scripts/fuzz.sh --list                  the targets
#
# Each target runs from a copy of its seeds in fuzz/corpus/<target>/ (the committed seeds stay
# as they are), with a memory limit and a per-input time limit; a crash, an out-of-memory, a
# time-out or a leak is a finding, written to fuzz/artifacts/<target>/ and named here. Prints
# per target the executions, the rate, the coverage and the peak memory (libFuzzer's whole
# output is in fuzz/logs/<target>.log); exits 1 when any target found something.
#
# Settings (environment):
#   SORA_FUZZ_SANITIZER  none (default) or address: the sanitizer the targets are built with
#   SORA_FUZZ_PROFILE    release (default) or dev: dev builds in a fraction of the time, and
#                        runs Burn's kernels many times slower (CI)
#   SORA_FUZZ_RSS_MB     memory limit per target, MiB (default 2048); one allocation over it
#                        is a finding too
#   SORA_FUZZ_TIMEOUT    seconds one input may take (default 10)
#   SORA_FUZZ_KEEP       a folder: the grown corpus of each target is kept in <folder>/<target>
#   CARGO_TARGET_DIR     the fuzz build (default fuzz/target; nightly, so never the stable one)
set -euo pipefail
cd "$(dirname "$0")/.."

targets=(csv_pipeline spec model_dir wav image idx)
sanitizer=${SORA_FUZZ_SANITIZER:-none}
profile=${SORA_FUZZ_PROFILE:-release}
rss_mb=${SORA_FUZZ_RSS_MB:-2048}
timeout=${SORA_FUZZ_TIMEOUT:-10}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/fuzz/target}

build() {
  # The packed input format of `model_dir` (fuzz/src/lib.rs, std only) has its own unit tests;
  # the fuzz package builds only instrumented, so they are compiled apart and run first.
  mkdir -p "$CARGO_TARGET_DIR"
  rustc --edition 2024 --test fuzz/src/lib.rs -o "$CARGO_TARGET_DIR/format-tests" \
    && "$CARGO_TARGET_DIR/format-tests" -q || { echo "fuzz/src/lib.rs: its tests failed"; exit 1; }
  command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz is missing: cargo install --locked cargo-fuzz"; exit 2; }
  # With debug assertions either way: overflow checks and `debug_assert!`s stay on.
  case $profile in
    release) mode=-O dir=release ;;
    dev) mode=--dev dir=debug ;;
    *) echo "SORA_FUZZ_PROFILE is release or dev, found $profile"; exit 2 ;;
  esac
  cargo +nightly fuzz build --fuzz-dir fuzz "$mode" --debug-assertions -s "$sanitizer"
  triple=$(rustc +nightly -vV | sed -n 's/^host: //p')
  bin=$CARGO_TARGET_DIR/$triple/$dir
}

case "${1:-}" in
  --list) printf '%s\n' "${targets[@]}"; exit 0 ;;
  --seeds) build; "$bin/seeds" fuzz/corpus; exit 0 ;;
esac

seconds=${1:-60}
[[ $seconds =~ ^[0-9]+$ ]] || { echo "SECONDS must be a whole number, found $seconds"; exit 2; }
shift || true
(( $# > 0 )) && targets=("$@")
for t in "${targets[@]}"; do
  [[ -d fuzz/corpus/$t ]] || { echo "unknown target $t (scripts/fuzz.sh --list)"; exit 2; }
done

build
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
final_stat() { sed -n "s/^stat::$1: *//p" "$2" | tail -1; }
found=0
for t in "${targets[@]}"; do
  corpus=$work/$t
  cp -r "fuzz/corpus/$t" "$corpus"
  artifacts=fuzz/artifacts/$t
  mkdir -p "$artifacts" fuzz/logs
  log=fuzz/logs/$t.log
  dict=()
  [[ -f fuzz/dict/$t.dict ]] && dict=("-dict=fuzz/dict/$t.dict")
  echo "--- $t: ${seconds}s, rss ${rss_mb} MiB, ${timeout}s per input, $profile, sanitizer $sanitizer"
  rc=0
  "$bin/$t" "$corpus" "${dict[@]}" \
    -max_total_time="$seconds" -rss_limit_mb="$rss_mb" -malloc_limit_mb="$rss_mb" \
    -timeout="$timeout" -artifact_prefix="$artifacts/" -print_final_stats=1 \
    >"$log" 2>&1 || rc=$?
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\) ft: \([0-9]*\) corp: \([0-9]*\).*/cov \1, ft \2, corpus \3/p' <<<"$last")
  printf '%s: %s executions, %s exec/s, %s, peak rss %s MiB, %s new units\n' "$t" \
    "$(final_stat number_of_executed_units "$log")" "$(final_stat average_exec_per_sec "$log")" \
    "${cov:-no coverage line}" "$(final_stat peak_rss_mb "$log")" "$(final_stat new_units_added "$log")"
  if (( rc != 0 )); then
    found=1
    echo "$t: FINDING (libFuzzer exit $rc)"
    grep -E '^==[0-9]+== ERROR|^(SUMMARY|artifact_prefix|Test unit written)|panicked at|^thread ' "$log" | head -20 || true
    echo "$t: log in $log"
  else
    echo "$t: no crash"
  fi
  if [[ -n ${SORA_FUZZ_KEEP:-} ]]; then
    mkdir -p "$SORA_FUZZ_KEEP"
    rm -rf "${SORA_FUZZ_KEEP:?}/$t"
    cp -r "$corpus" "$SORA_FUZZ_KEEP/$t"
  fi
done
exit "$found"
