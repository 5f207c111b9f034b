#!/usr/bin/env python3
"""Conformal coverage and calibration of Sora's classifiers on the bundled tables.

For each table and seed, `sora train --coverage C` calibrates split-conformal prediction sets
(and, by default, a temperature) on the run's validation part and checks them on its test
part, which nothing was fitted on; `decision.json` records the test part's coverage, the mean
set size, and the expected calibration error before and after temperature scaling. This
script collects them: per table the mean and sd over seeds, and the mean's distance from the
target.

    python3 benches/coverage.py --sora target/release/sora --coverage 0.9

Writes `--json` (default `target/coverage.json`) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETS = {
    "heart": ["data/heart_cleveland/heart_cleveland.csv", "--target", "num", "--target-above", "0"],
    "wdbc": ["data/breast_cancer_wdbc/breast_cancer.csv", "--target", "target"],
    "pima": ["data/pima_diabetes/pima_diabetes.csv", "--target", "outcome"],
    "german": ["data/german_credit/german_credit.csv", "--target", "class"],
    "taiwan": [
        "data/credit_default_taiwan/credit_default.csv",
        "--target",
        "default_payment_next_month",
        "--ignore",
        "ID",
    ],
    "digits": ["data/digits/digits.csv", "--target", "label"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sora", default=str(ROOT / "target/release/sora"))
    parser.add_argument("--sets", default="heart,wdbc,pima,german,taiwan,digits")
    parser.add_argument("--seeds", default="1,2,3,4,5")
    parser.add_argument("--coverage", type=float, default=0.9)
    parser.add_argument("--json", default=str(ROOT / "target/coverage.json"))
    a = parser.parse_args()
    results = []
    for name in a.sets.split(","):
        data, *args = SETS[name]
        runs = []
        for seed in a.seeds.split(","):
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "m"
                done = subprocess.run(
                    [a.sora, "train", "--data", data, *args, "--coverage", str(a.coverage),
                     "--seed", seed, "--progress", "quiet", "--out", str(out)],
                    capture_output=True, text=True, cwd=ROOT,
                )
                if done.returncode != 0:
                    sys.exit(f"{name} seed {seed}:\n{done.stderr}")
                decision = json.loads((out / "decision.json").read_text())
                test = decision["test"]
                runs.append({
                    "seed": int(seed),
                    "rows": test["rows"],
                    "calibration_rows": decision["sets"]["calibration_rows"],
                    "coverage": test["coverage"],
                    "set_size": test["mean_size"],
                    "ece_before": test["ece"][0],
                    "ece_after": test["ece"][1],
                    "calibration": decision["calibration"],
                    "note": decision.get("calibration_note"),
                })
                print(f"{name} seed {seed}: {runs[-1]}", flush=True)
        cov = [r["coverage"] for r in runs]
        summary = {
            "set": name,
            "runs": runs,
            "coverage_mean": statistics.mean(cov),
            "coverage_sd": statistics.stdev(cov) if len(cov) > 1 else 0.0,
            "set_size_mean": statistics.mean(r["set_size"] for r in runs),
            "ece_before_mean": statistics.mean(r["ece_before"] for r in runs),
            "ece_after_mean": statistics.mean(r["ece_after"] for r in runs),
        }
        results.append(summary)
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(results, indent=2))
    print(f"\n| set | test rows | coverage (target {a.coverage}) | mean set size | "
          "ECE before → after |")
    print("|---|---:|---|---:|---|")
    for s in results:
        print(
            f"| {s['set']} | {s['runs'][0]['rows']} | {s['coverage_mean']:.3f} ± "
            f"{s['coverage_sd']:.3f} | {s['set_size_mean']:.2f} | "
            f"{s['ece_before_mean']:.3f} → {s['ece_after_mean']:.3f} |"
        )


if __name__ == "__main__":
    main()
