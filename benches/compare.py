#!/usr/bin/env python3
"""Run Sora and PyTorch side by side on the BENCH.md workloads and write docs/performance.md.

Usage (from anywhere; paths are relative to the repository root):

    python3 benches/compare.py [--python .venv-ref/bin/python] [--repeats 3]
                               [--backends flex,ndarray] [--out docs/performance.md]

The PyTorch reference needs its own environment, kept out of the repository and CI:

    python3 -m venv .venv-ref && .venv-ref/bin/pip install torch==2.9.0 captum safetensors

(captum is only needed by the `explain-ig` workload.)

`audio-cnn` trains PyTorch on the features Sora computed: one untimed Sora run comes first and
writes them to target/bench/audio-cnn-features.{f32,json}; without them the PyTorch runs of that
workload fail (and say so).

What it does:
  * builds the Sora bench once (`cargo bench --bench workloads --no-run`);
  * for each workload, alternates the programs A B C A B C ... (pytorch, sora-<backend>...)
    `--repeats` times; each program prints one JSON line on stdout (the last line of stdout
    that parses as a JSON object is taken);
  * takes the median of each metric per (impl, backend, workload);
  * writes the Markdown report (machine, versions, command, tables, Sora/PyTorch ratios against
    the targets) and the raw runs as JSON next to it (docs/performance.json);
  * keeps an existing `## Findings` section of the output file verbatim.

Only the Python standard library is used. Run it on an otherwise idle machine: a 1-minute load
above 0.5 is reported as a warning on stderr and in the report.
"""

import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTORCH_BENCH = os.path.join("benches", "reference", "pytorch_bench.py")
WORKLOADS = ["mlp-digits", "mlp-wide", "cnn-digits", "audio-cnn", "lstm-text", "gru-text", "infer",
             "explain-ig", "matmul"]
LOAD_LIMIT = 0.5

# (workload, metric, kind, target) -- kind "throughput": ratio = sora / pytorch;
# "latency": ratio = pytorch / sora (so > 1 means Sora is faster).
TARGETS = [
    ("mlp-digits", "samples_per_s", "throughput", 4.0, "mlp-digits training samples/s"),
    ("infer", "single_median_us", "latency", 7.0, "infer single-sample latency"),
    ("infer", "batch_samples_per_s", "throughput", 1.5, "infer batch-1024 samples/s"),
    ("mlp-wide", "samples_per_s", "throughput", 1.2, "mlp-wide training samples/s"),
    ("cnn-digits", "samples_per_s", "throughput", 1.5, "cnn-digits training samples/s"),
    ("audio-cnn", "samples_per_s", "throughput", 1.0, "audio-cnn training samples/s"),
    ("lstm-text", "tokens_per_s", "throughput", 1.5, "lstm-text training tokens/s"),
    ("gru-text", "tokens_per_s", "throughput", 1.5, "gru-text training tokens/s"),
    ("explain-ig", "samples_per_s", "throughput", 40.0, "explain-ig samples/s"),
]

# Labels and headers are Markdown table cells: a literal "|" is written "\\|".
# (workload, metric, label, reference name, rtol): checks that Sora's figure is at most the
# PyTorch side's (lower is better, e.g. an approximation error); met when
# sora <= pytorch * (1 + rtol). explain-ig's |delta| is dominated by the quadrature error of 50
# Gauss-Legendre steps over the ReLU kinks (float64 gives the same 4.8e-2 as float32), so the
# same algorithm in float32 on the same weights lands on Captum's figure give or take rounding
# (~1e-5): rtol 1e-3 keeps that from deciding the check.
AT_MOST_REFERENCE = [
    ("explain-ig", "max_abs_delta", "explain-ig max \\|delta\\| ≤ Captum's", "Captum", 1e-3),
]

# Keys that must agree between the two sides for a workload to be a like-for-like comparison.
MUST_MATCH = {
    "cnn-digits": ["n_params"],
    # The PyTorch side reads Sora's features; these check it split and trained them alike.
    "audio-cnn": ["n_params", "n_train", "n_test", "epochs"],
    # ids_sum: both sides generate the token ids (SplitMix64), so this checks they are the same.
    "lstm-text": ["n_params", "steps", "ids_sum"],
    "gru-text": ["n_params", "steps", "ids_sum"],
    "explain-ig": ["n_steps", "method", "n_samples"],
}

# Columns per workload: (metric key, header, format).
COLUMNS = {
    "mlp-digits": [
        ("samples_per_s", "samples/s", "{:,.0f}"),
        ("test_accuracy", "test accuracy", "{:.4f}"),
        ("train_seconds", "train s", "{:.3f}"),
        ("peak_rss_mib", "peak RSS MiB", "{:.1f}"),
    ],
    "mlp-wide": [
        ("samples_per_s", "samples/s", "{:,.0f}"),
        ("gflops", "GFLOP/s", "{:.2f}"),
        ("train_seconds", "train s", "{:.3f}"),
        ("n_params", "params", "{:,.0f}"),
        ("peak_rss_mib", "peak RSS MiB", "{:.1f}"),
    ],
    "cnn-digits": [
        ("samples_per_s", "samples/s", "{:,.0f}"),
        ("test_accuracy", "test accuracy", "{:.4f}"),
        ("train_seconds", "train s", "{:.3f}"),
        ("n_params", "params", "{:,.0f}"),
        ("peak_rss_mib", "peak RSS MiB", "{:.1f}"),
    ],
    "audio-cnn": [
        ("samples_per_s", "samples/s", "{:,.0f}"),
        ("test_accuracy", "test accuracy", "{:.4f}"),
        ("train_seconds", "train s", "{:.3f}"),
        ("n_params", "params", "{:,.0f}"),
        ("peak_rss_mib", "peak RSS MiB", "{:.1f}"),
    ],
    "gru-text": [
        ("tokens_per_s", "tokens/s", "{:,.0f}"),
        ("train_loss", "epoch mean loss", "{:.4f}"),
        ("train_accuracy", "train accuracy", "{:.4f}"),
        ("train_seconds", "train s", "{:.3f}"),
        ("n_params", "params", "{:,.0f}"),
        ("peak_rss_mib", "peak RSS MiB", "{:.1f}"),
    ],
    "lstm-text": [
        ("tokens_per_s", "tokens/s", "{:,.0f}"),
        ("train_loss", "epoch mean loss", "{:.4f}"),
        ("train_accuracy", "train accuracy", "{:.4f}"),
        ("train_seconds", "train s", "{:.3f}"),
        ("n_params", "params", "{:,.0f}"),
        ("peak_rss_mib", "peak RSS MiB", "{:.1f}"),
    ],
    "infer": [
        ("single_median_us", "single median µs", "{:.2f}"),
        ("batch_samples_per_s", "batch-1024 samples/s", "{:,.0f}"),
        ("test_accuracy", "test accuracy", "{:.4f}"),
        ("peak_rss_mib", "peak RSS MiB", "{:.1f}"),
    ],
    "explain-ig": [
        ("samples_per_s", "samples/s", "{:,.0f}"),
        ("max_abs_delta", "max \\|delta\\|", "{:.2e}"),
        ("mean_abs_delta", "mean \\|delta\\|", "{:.2e}"),
        ("test_accuracy", "test accuracy", "{:.4f}"),
        ("n_steps", "steps", "{:.0f}"),
        ("method", "method", "{}"),
        ("peak_rss_mib", "peak RSS MiB", "{:.1f}"),
    ],
    "matmul": [
        ("gflops", "GFLOP/s", "{:.2f}"),
        ("peak_rss_mib", "peak RSS MiB", "{:.1f}"),
    ],
}

# Ratio columns per workload: (metric, kind, header).
RATIOS = {
    "mlp-digits": [("samples_per_s", "throughput", "Sora/PyTorch samples/s")],
    "mlp-wide": [("samples_per_s", "throughput", "Sora/PyTorch samples/s")],
    "cnn-digits": [("samples_per_s", "throughput", "Sora/PyTorch samples/s")],
    "audio-cnn": [("samples_per_s", "throughput", "Sora/PyTorch samples/s")],
    "lstm-text": [("tokens_per_s", "throughput", "Sora/PyTorch tokens/s")],
    "gru-text": [("tokens_per_s", "throughput", "Sora/PyTorch tokens/s")],
    "infer": [
        ("single_median_us", "latency", "PyTorch µs / Sora µs (single)"),
        ("batch_samples_per_s", "throughput", "Sora/PyTorch batch samples/s"),
    ],
    "explain-ig": [("samples_per_s", "throughput", "Sora/Captum samples/s")],
    "matmul": [("gflops", "throughput", "Sora/PyTorch GFLOP/s")],
}

WORKLOAD_NOTES = {
    "mlp-digits": "64→128→64→10 ReLU MLP, digits (1,437 train / 360 test), SGD lr 0.05 "
                  "momentum 0.9, batch 32, 20 epochs; timing covers the training loop only.",
    "mlp-wide": "512→1024→1024→10 ReLU MLP, 16,384 × 512 standard normal, SGD lr 0.01 "
                "momentum 0.9, batch 256, 2 epochs; GFLOP/s = 6 × params × samples / s.",
    "cnn-digits": "the digits as 1×8×8 images: conv3×3(16, pad 1) → ReLU → maxpool 2 → "
                  "conv3×3(32, pad 1) → ReLU → global avg pool → linear 10; SGD lr 0.05 "
                  "momentum 0.9, batch 32, 10 epochs; timing covers the training loop only.",
    "audio-cnn": "the audio job's default 1-D CNN (`sora_jobs::media::default_spec` for "
                 "`[13, 101]` features) on MFCC frames of the 2,000 bundled FSDD clips "
                 "(`data/fsdd/<digit>/*.wav`, 8 kHz, sorted by digit then file name; 13 MFCCs "
                 "of 256-sample windows every 80 samples over each clip fitted to 1 s → 13 × "
                 "101), computed by Sora and read by PyTorch from the file Sora writes, so both "
                 "train on the same inputs. Clip i is a test clip when i % 5 == 0 (1,600 train "
                 "/ 400 test); each coefficient row standardized with the training clips' mean "
                 "and population sd (the audio job's `channel_stats`, sd floored at 1e-6). "
                 "conv1d(13→32, width 5, pad 2) → ReLU → maxpool 2 → conv1d(32→64, width 5, "
                 "pad 2) → ReLU → maxpool 2 → conv1d(64→64, width 3, pad 1) → ReLU → global "
                 "max over time → linear 64 → ReLU → linear 10 (29,578 parameters); SGD lr "
                 "0.01 momentum 0.9 (at 0.05 this model, without batch norm, diverged on Sora "
                 "and trained poorly on PyTorch), batch 32, 10 epochs, shuffled every epoch "
                 "(seeded); timing covers the training loop only (not the feature extraction).",
    "lstm-text": "embedding(10,000, 64) → LSTM(64→128, 1 layer) → last hidden state → "
                 "linear 2 on 3,200 × 64 uniform token ids (SplitMix64 from state 42, the same "
                 "ids on both sides), label = first token mod 2; SGD lr 0.05 momentum 0.9, "
                 "batch 32, 100 steps = one pass over the 3,200 sequences in order (no "
                 "shuffle); tokens/s = 100 × 32 × 64 / training seconds; loss = the pass's "
                 "mean training loss, accuracy = on the 3,200 training sequences after it "
                 "(the label hangs on the first of 64 random tokens, which one pass cannot "
                 "learn: about 0.5 and ln 2 ≈ 0.69 are expected on both sides).",
    "gru-text": "the lstm-text workload with a GRU(64→128) in place of the LSTM (PyTorch's "
                "`nn.GRU` gate formulation on both sides; 3 gates, 714,754 parameters).",
    "infer": "the trained mlp-digits model; single [1, 64] sample: median of 2,000 timed "
             "calls (after 200 warm-up); batch of 1,024: median of 300 timed calls (after 20 warm-up).",
    "explain-ig": "integrated gradients of the trained mlp-digits model over the 360 test "
                  "samples in one call (target = predicted class, baseline = zeros, 50 "
                  "Gauss-Legendre steps, all 360 × 50 rows in one batch); the PyTorch row is "
                  "Captum's `IntegratedGradients`. samples/s = 360 / median of 5 timed calls "
                  "(after 1 warm-up); |delta| = |sum of a sample's attributions − "
                  "(F(x)[t] − F(0)[t])|, the completeness error, of the last timed call.",
    "matmul": "plain 2048 × 2048 @ 2048 × 2048 float32 matmul, 3 warm-up, 10 timed, "
              "GFLOP/s = 2n³ / median s: the machine reference for mlp-wide.",
}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Machine information
# ---------------------------------------------------------------------------

def read_text(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def loadavg():
    parts = read_text("/proc/loadavg").split()
    try:
        return float(parts[0]), float(parts[1]), float(parts[2])
    except (IndexError, ValueError):
        return None


def cpu_model():
    for line in read_text("/proc/cpuinfo").splitlines():
        if line.lower().startswith("model name") and ":" in line:
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def mem_total_gib():
    for line in read_text("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            try:
                return float(line.split()[1]) / (1024.0 * 1024.0)
            except (IndexError, ValueError):
                break
    return None


def command_output(cmd):
    try:
        out = subprocess.run(cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, universal_newlines=True, timeout=60)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


# ---------------------------------------------------------------------------
# Running the programs
# ---------------------------------------------------------------------------

def last_json_line(stdout):
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict):
            return obj
    return None


def run_program(cmd, timeout):
    """Run cmd from the repo root; return (parsed JSON or None, error string or None, wall s)."""
    log("$ " + " ".join(shlex.quote(c) for c in cmd))
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, "timed out after %ss" % timeout, time.perf_counter() - t0
    except OSError as e:
        return None, "could not start: %s" % e, time.perf_counter() - t0
    wall = time.perf_counter() - t0
    result = last_json_line(proc.stdout)
    if proc.returncode != 0 or result is None:
        tail = "\n".join((proc.stderr or "").splitlines()[-20:])
        log("  failed (exit %d); stderr tail:\n%s" % (proc.returncode, tail))
        if proc.returncode != 0:
            return None, "exit status %d" % proc.returncode, wall
        return None, "no JSON line on stdout", wall
    log("  " + json.dumps(result))
    return result, None, wall


def build_sora():
    cmd = ["cargo", "bench", "--bench", "workloads", "--no-run"]
    log("$ " + " ".join(cmd))
    proc = subprocess.run(cmd, cwd=REPO_ROOT)
    if proc.returncode != 0:
        log("error: building the Sora bench failed (exit %d)" % proc.returncode)
        sys.exit(proc.returncode)


def sora_command(args, workload, backend):
    if args.sora_cmd:
        base = shlex.split(args.sora_cmd)
    else:
        base = ["cargo", "bench", "--bench", "workloads", "--"]
    return base + ["--workload", workload, "--device", backend]


# Written by Sora's explain-ig run: the reference explains the same weights.
EXPLAIN_IG_WEIGHTS = os.path.join("target", "bench", "explain-ig-model.safetensors")
# Written by Sora's audio-cnn run (with the .f32 values beside it): the reference trains on
# the same standardized features.
AUDIO_CNN_FEATURES = os.path.join("target", "bench", "audio-cnn-features.json")
AUDIO_CNN_VALUES = os.path.join("target", "bench", "audio-cnn-features.f32")


def pytorch_command(args, workload):
    cmd = [args.python, PYTORCH_BENCH, "--workload", workload, "--threads", str(args.threads)]
    if args.data:
        cmd += ["--data", args.data]
    if workload == "explain-ig" and os.path.exists(os.path.join(REPO_ROOT, EXPLAIN_IG_WEIGHTS)):
        cmd += ["--weights", EXPLAIN_IG_WEIGHTS]
    if workload == "audio-cnn":
        cmd += ["--features", AUDIO_CNN_FEATURES]
    return cmd


def audio_features_present():
    return all(os.path.exists(os.path.join(REPO_ROOT, p))
               for p in (AUDIO_CNN_FEATURES, AUDIO_CNN_VALUES))


# ---------------------------------------------------------------------------
# Aggregation
# ---------------------------------------------------------------------------

def program_key(run):
    return (run["impl"], run["backend"])


def medians(runs):
    """{(workload, impl, backend): {metric: median}} over the successful runs."""
    groups = {}
    for r in runs:
        if not r.get("ok"):
            continue
        groups.setdefault((r["workload"], r["impl"], r["backend"]), []).append(r)
    out = {}
    for key, rs in groups.items():
        metrics = {}
        names = set()
        for r in rs:
            names.update(k for k, v in r.items()
                         if isinstance(v, (int, float)) and not isinstance(v, bool))
        for name in names:
            if name in ("repeat", "wall_s"):
                continue
            vals = [r[name] for r in rs
                    if isinstance(r.get(name), (int, float)) and not isinstance(r.get(name), bool)]
            if vals:
                metrics[name] = statistics.median(vals)
        strings = {}
        for r in rs:
            for k, v in r.items():
                if isinstance(v, str) and k not in ("version", "error"):
                    strings.setdefault(k, set()).add(v)
        metrics["_strings"] = {k: " / ".join(sorted(v)) for k, v in strings.items()}
        metrics["_runs"] = len(rs)
        metrics["_version"] = rs[-1].get("version")
        out[key] = metrics
    return out


def metric_value(m, key):
    """A median numeric metric, else a string metric (e.g. "method"), else None."""
    if not m:
        return None
    if key in m:
        return m[key]
    return m.get("_strings", {}).get(key)


def at_most(sora, pytorch, rtol=0.0):
    """True / False for sora <= pytorch * (1 + rtol); None when either figure is missing."""
    if not isinstance(sora, (int, float)) or not isinstance(pytorch, (int, float)):
        return None
    return sora <= pytorch * (1.0 + rtol)


def plain(v):
    return "%d" % v if isinstance(v, float) and v.is_integer() else str(v)


def mismatched_keys(workload, sora_m, pytorch_m):
    """Keys of MUST_MATCH[workload] whose values differ between the two sides (when both
    report them)."""
    out = []
    for key in MUST_MATCH.get(workload, []):
        a, b = metric_value(sora_m, key), metric_value(pytorch_m, key)
        if a is not None and b is not None and a != b:
            out.append("%s %s vs %s" % (key, plain(a), plain(b)))
    return out


def ratio(sora, pytorch, kind):
    if sora is None or pytorch is None:
        return None
    try:
        if kind == "latency":
            return pytorch / sora
        return sora / pytorch
    except ZeroDivisionError:
        return None


# ---------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------

def fmt(value, spec):
    if value is None:
        return "—"
    try:
        return spec.format(value)
    except (ValueError, TypeError):
        return str(value)


def fmt_ratio(r, target=None):
    if r is None:
        return "—"
    s = "{:.2f}×".format(r)
    if target is not None:
        s += " " + ("✅" if r >= target else "❌")
    return s


def target_for(workload, metric):
    for w, m, _, t, _ in TARGETS:
        if w == workload and m == metric:
            return t
    return None


def workload_table(workload, programs, med, all_runs):
    cols = COLUMNS[workload]
    ratios = RATIOS[workload]
    checks = [(m, label, rtol) for w, m, label, _, rtol in AT_MOST_REFERENCE if w == workload]
    headers = ["impl", "backend", "runs"] + [h for _, h, _ in cols]
    if workload == "mlp-wide":
        headers += ["matmul GFLOP/s (same backend)", "fraction of matmul"]
    for metric, _, h in ratios:
        t = target_for(workload, metric)
        headers.append(h + (" (target ≥ %.1f)" % t if t is not None else ""))
    for metric, label, _ in checks:
        headers.append(label.split(" ", 1)[1] if label.startswith(workload + " ") else label)
    lines = ["| " + " | ".join(headers) + " |",
             "|" + "|".join(["---"] * 2 + ["---:"] * (len(headers) - 2)) + "|"]
    pt = med.get((workload, "pytorch", "torch-cpu"))
    for impl, backend in programs:
        m = med.get((workload, impl, backend))
        attempted = sum(1 for r in all_runs if r["workload"] == workload
                        and r["impl"] == impl and r["backend"] == backend)
        if m is None:
            row = [impl, backend, "0/%d" % attempted] + ["failed"] * (len(headers) - 3)
            lines.append("| " + " | ".join(row) + " |")
            continue
        row = [impl, backend, "%d/%d" % (m["_runs"], attempted)]
        row += [fmt(metric_value(m, k), spec) for k, _, spec in cols]
        if workload == "mlp-wide":
            mm = med.get(("matmul", impl, backend), {}).get("gflops")
            row.append(fmt(mm, "{:.2f}"))
            frac = (m["gflops"] / mm) if (mm and m.get("gflops") is not None) else None
            row.append(fmt(frac, "{:.1%}"))
        for metric, kind, _ in ratios:
            if impl == "pytorch":
                row.append("1.00× (reference)")
                continue
            r = ratio(m.get(metric), pt.get(metric) if pt else None, kind)
            if mismatched_keys(workload, m, pt or {}):
                row.append(fmt_ratio(r) + (" (not comparable)" if r is not None else ""))
            else:
                row.append(fmt_ratio(r, target_for(workload, metric)))
        for metric, _, rtol in checks:
            if impl == "pytorch":
                row.append("(reference)")
                continue
            ok = at_most(m.get(metric), pt.get(metric) if pt else None, rtol)
            if ok is not None and mismatched_keys(workload, m, pt or {}):
                ok = None  # not the same work: no verdict (see the note below the table)
            row.append("—" if ok is None else ("✅" if ok else "❌"))
        lines.append("| " + " | ".join(row) + " |")
    pt_m = pt or {}
    for impl, backend in programs:
        if impl == "pytorch":
            continue
        diff = mismatched_keys(workload, med.get((workload, impl, backend)), pt_m)
        if diff:
            lines.append("")
            lines.append("> ⚠️ %s/%s does not do the same work as the reference: %s."
                         % (impl, backend, "; ".join(diff)))
    return lines


def summary_table(backends, med, workloads):
    lines = ["| target | backend | ratio | required | met |", "|---|---|---:|---:|:---:|"]
    for workload, metric, kind, target, label in TARGETS:
        if workload not in workloads:
            continue
        pt = med.get((workload, "pytorch", "torch-cpu"), {})
        for b in backends:
            s = med.get((workload, "sora", b), {})
            r = ratio(s.get(metric), pt.get(metric), kind)
            met = "—" if r is None else ("✅" if r >= target else "❌")
            if r is not None and mismatched_keys(workload, s, pt):
                met = "— (not the same work)"
            lines.append("| %s | %s | %s | ≥ %.1f | %s |"
                         % (label, b, fmt_ratio(r), target, met))
    for workload, metric, label, ref_name, rtol in AT_MOST_REFERENCE:
        if workload not in workloads:
            continue
        pt = med.get((workload, "pytorch", "torch-cpu"), {})
        for b in backends:
            s = med.get((workload, "sora", b), {})
            sv, pv = s.get(metric), pt.get(metric)
            ok = at_most(sv, pv, rtol)
            if ok is not None and mismatched_keys(workload, s, pt):
                ok = None  # not the same work: no verdict
            shown = "—" if sv is None and pv is None else \
                "Sora %s vs %s %s" % (fmt(sv, "{:.2e}"), ref_name, fmt(pv, "{:.2e}"))
            lines.append("| %s | %s | %s | ≤ %s's%s | %s |"
                         % (label, b, shown, ref_name,
                            (" (+%g%%)" % (100 * rtol)) if rtol else "",
                            "—" if ok is None else ("✅" if ok else "❌")))
    return lines


def old_findings(path):
    text = read_text(path)
    if not text:
        return None
    lines = text.splitlines(True)
    for i, line in enumerate(lines):
        if line.rstrip("\r\n") == "## Findings":
            return "".join(lines[i:])
    return None


def write_markdown(args, runs, med, programs, load_before, load_after, command, started):
    backends = args.backend_list
    torch_versions = sorted({r.get("version") for r in runs
                             if r.get("ok") and r["impl"] == "pytorch" and r.get("version")})
    sora_versions = {}
    for r in runs:
        if r.get("ok") and r["impl"] == "sora" and r.get("version"):
            sora_versions.setdefault(r["backend"], set()).add(str(r["version"]))
    mem = mem_total_gib()

    out = []
    out.append("# Performance: Sora vs PyTorch")
    out.append("")
    out.append("Generated by `benches/compare.py` on %s (UTC). Workloads are defined in BENCH.md; "
               "the figures that matter are the ratios, measured side by side in one run on the "
               "same machine with the programs alternated (A B A B …); every figure is the median "
               "of the successful runs. Raw runs: `%s`."
               % (started.strftime("%Y-%m-%d %H:%M"), os.path.relpath(args.json_out, REPO_ROOT)))
    out.append("")
    out.append("## Setup")
    out.append("")
    out.append("- Machine: %s; %d cores (`os.cpu_count()`); %s memory; kernel %s (%s)"
               % (cpu_model(), os.cpu_count() or 0,
                  ("%.1f GiB" % mem) if mem is not None else "unknown",
                  platform.release(), platform.machine()))
    if load_before is not None:
        out.append("- Load average (1/5/15 min) before: %.2f / %.2f / %.2f; after: %s"
                   % (load_before + (("%.2f / %.2f / %.2f" % load_after)
                                      if load_after else "unknown",)))
    out.append("- PyTorch: %s (eager, float32, CPU, %d threads)"
               % (", ".join(torch_versions) or "unknown", args.threads))
    out.append("- Rust: %s" % command_output(["rustc", "--version"]))
    out.append("- Sora/Burn: %s" % ("; ".join("%s: %s" % (b, ", ".join(sorted(v)))
                                             for b, v in sorted(sora_versions.items()))
                                   or "unknown"))
    out.append("- Command: `%s`" % command)
    out.append("- Repeats: %d per program and workload; backends: %s"
               % (args.repeats, ", ".join(backends)))
    out.append("")
    if load_before is not None and load_before[0] > LOAD_LIMIT:
        out.append("> ⚠️ **The machine was not idle**: 1-minute load average %.2f > %.2f when the "
                   "run started. Compare-under-load figures (PyTorch's OpenMP threads especially) "
                   "are not meaningful; rerun on an idle machine." % (load_before[0], LOAD_LIMIT))
        out.append("")
    if load_after is not None and load_after[0] > LOAD_LIMIT and \
            (load_before is None or load_before[0] <= LOAD_LIMIT):
        out.append("> Note: the 1-minute load average was %.2f at the end of the run (the "
                   "benchmarks themselves load the machine, so this alone is expected)."
                   % load_after[0])
        out.append("")
    failed = [r for r in runs if not r.get("ok")]
    if failed:
        out.append("> ⚠️ %d run(s) failed: %s" % (len(failed), "; ".join(
            "%s %s/%s #%d: %s" % (r["workload"], r["impl"], r["backend"], r["repeat"],
                                  r.get("error")) for r in failed)))
        out.append("")

    out.append("## Targets")
    out.append("")
    out.append("Ratio Sora / PyTorch: for throughput, Sora's figure over PyTorch's; for latency, "
               "PyTorch's µs over Sora's — above 1 means Sora is faster in both cases.")
    out.append("")
    out.extend(summary_table(backends, med, args.workload_list))
    out.append("")

    for workload in args.workload_list:
        out.append("## %s" % workload)
        out.append("")
        out.append(WORKLOAD_NOTES[workload])
        out.append("")
        out.extend(workload_table(workload, programs, med, runs))
        out.append("")

    findings = old_findings(args.out)
    if findings is None:
        findings = "## Findings\n\n(none yet)\n"
    text = "\n".join(out) + "\n" + findings
    if not text.endswith("\n"):
        text += "\n"
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text)


# ---------------------------------------------------------------------------

def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--python", default=".venv-ref/bin/python",
                   help="Python with torch for the reference (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--backends", default="flex,ndarray", help="Sora devices, comma-separated")
    p.add_argument("--workloads", default=",".join(WORKLOADS),
                   help="comma-separated subset of %s" % ",".join(WORKLOADS))
    p.add_argument("--out", default="docs/performance.md")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                   help="PyTorch threads (default: all cores, %(default)s)")
    p.add_argument("--data", default=None, help="digits CSV passed to the PyTorch side")
    p.add_argument("--timeout", type=float, default=1800, help="seconds per program run")
    p.add_argument("--sora-cmd", default=None,
                   help="testing only: command prefix replacing `cargo bench --bench workloads --`"
                        " (skips the cargo build); `--workload W --device B` is appended")
    args = p.parse_args()

    if args.repeats < 1:
        p.error("--repeats must be at least 1")
    args.backend_list = [b.strip() for b in args.backends.split(",") if b.strip()]
    args.workload_list = [w.strip() for w in args.workloads.split(",") if w.strip()]
    for w in args.workload_list:
        if w not in WORKLOADS:
            p.error("unknown workload %r" % w)

    def repo_path(path):
        return path if os.path.isabs(path) else os.path.join(REPO_ROOT, path)

    args.out = repo_path(args.out)
    args.json_out = os.path.splitext(args.out)[0] + ".json"
    if os.sep in args.python or (os.altsep and os.altsep in args.python):
        args.python = repo_path(args.python)
        if not os.path.exists(args.python):
            p.error("%s not found; create it with: python3 -m venv .venv-ref && "
                    ".venv-ref/bin/pip install torch==2.9.0 captum safetensors" % args.python)
    if args.data:
        args.data = os.path.abspath(args.data)

    command = "python3 " + " ".join(shlex.quote(a) for a in sys.argv)
    started = datetime.datetime.now(datetime.timezone.utc)

    load_before = loadavg()
    if load_before is not None and load_before[0] > LOAD_LIMIT:
        log("warning: 1-minute load average is %.2f (> %.2f): the machine is not idle, and the "
            "comparison will not be meaningful" % (load_before[0], LOAD_LIMIT))

    if not args.sora_cmd:
        build_sora()

    programs = [("pytorch", "torch-cpu")] + [("sora", b) for b in args.backend_list]
    runs = []
    for workload in args.workload_list:
        if workload == "explain-ig" and not args.sora_cmd:
            # One untimed Sora run first, so that every PyTorch run explains Sora's weights.
            run_program(sora_command(args, workload, args.backend_list[0]), args.timeout)
        if workload == "audio-cnn":
            # PyTorch trains on the features Sora writes: one untimed Sora run first, after
            # removing any earlier files, so that a failed run cannot leave stale ones behind.
            for path in (AUDIO_CNN_FEATURES, AUDIO_CNN_VALUES):
                if os.path.exists(os.path.join(REPO_ROOT, path)):
                    os.remove(os.path.join(REPO_ROOT, path))
            run_program(sora_command(args, workload, args.backend_list[0]), args.timeout)
            if not audio_features_present():
                log("error: the Sora audio-cnn run did not write %s and %s; the PyTorch runs "
                    "of audio-cnn need them and are skipped"
                    % (AUDIO_CNN_FEATURES, AUDIO_CNN_VALUES))
        for rep in range(args.repeats):
            for impl, backend in programs:
                if impl == "pytorch":
                    cmd = pytorch_command(args, workload)
                else:
                    cmd = sora_command(args, workload, backend)
                if impl == "pytorch" and workload == "audio-cnn" and not audio_features_present():
                    result, error, wall = None, "no %s (written by Sora's audio-cnn run)" \
                        % AUDIO_CNN_FEATURES, 0.0
                else:
                    result, error, wall = run_program(cmd, args.timeout)
                entry = {"workload": workload, "impl": impl, "backend": backend,
                         "repeat": rep, "wall_s": wall, "command": cmd}
                if result is None:
                    entry.update({"ok": False, "error": error})
                else:
                    mismatch = [(k, want, result.get(k)) for k, want in
                                (("workload", workload), ("impl", impl), ("backend", backend))
                                if result.get(k) != want]
                    if mismatch:
                        log("  warning: JSON fields differ from what was asked: %s"
                            % ", ".join("%s=%r (expected %r)" % (k, got, want)
                                        for k, want, got in mismatch))
                    entry.update(result)
                    # Keep our own labels so that grouping follows what was run.
                    entry.update({"workload": workload, "impl": impl, "backend": backend,
                                  "ok": True})
                runs.append(entry)
    load_after = loadavg()

    med = medians(runs)
    os.makedirs(os.path.dirname(args.json_out) or ".", exist_ok=True)
    with open(args.json_out, "w") as f:
        json.dump(runs, f, indent=1)
        f.write("\n")
    write_markdown(args, runs, med, programs, load_before, load_after, command, started)
    log("wrote %s and %s" % (os.path.relpath(args.out), os.path.relpath(args.json_out)))


if __name__ == "__main__":
    main()
