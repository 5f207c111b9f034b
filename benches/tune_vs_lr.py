#!/usr/bin/env python3
"""`sora tune` within a budget against L2 logistic regression, on folds the search never saw.

For each table: `sora tune --budget B --seed 7` searches by 5-fold cross-validation on folds
dealt with seed 7; the winning options are then cross-validated by `benches/small_data.py`
(repeated stratified 5-fold, Sora's seed 42, so other folds than the search's) beside L2
logistic regression with its C tuned by an inner cross-validation on each fold's training
rows, on exactly the same folds.

The search saw every row (as a user's search would), so the outer folds are not fully
independent of it; they are independent of the search's own partition.

    python3 benches/tune_vs_lr.py --sora target/release/sora --budget 5m

Writes `--json` (default `target/tune_vs_lr.json`) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETS = {
    "heart": ["data/heart_cleveland/heart_cleveland.csv", "--target", "num", "--target-above", "0"],
    "wdbc": ["data/breast_cancer_wdbc/breast_cancer.csv", "--target", "target"],
    "pima": ["data/pima_diabetes/pima_diabetes.csv", "--target", "outcome"],
    "german": ["data/german_credit/german_credit.csv", "--target", "class"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sora", default=str(ROOT / "target/release/sora"))
    parser.add_argument("--sets", default="heart,wdbc,pima,german")
    parser.add_argument("--budget", default="5m")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--json", default=str(ROOT / "target/tune_vs_lr.json"))
    a = parser.parse_args()
    results = []
    for name in a.sets.split(","):
        data, *args = SETS[name]
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "tuned"
            start = time.monotonic()
            done = subprocess.run(
                [a.sora, "tune", "--data", data, *args, "--budget", a.budget, "--seed", "7",
                 "--progress", "quiet", "--out", str(out)],
                capture_output=True, text=True, cwd=ROOT,
            )
            seconds = time.monotonic() - start
            if done.returncode != 0:
                sys.exit(f"{name}: sora tune failed:\n{done.stderr}")
            tune = json.loads((out / "tune.json").read_text())
        best = tune["best"]["args"]
        trials = len(tune["trials"])
        print(f"{name}: {trials} trials in {seconds:.0f} s, best {' '.join(best)}", flush=True)
        report = Path(tempfile.mkdtemp()) / f"{name}.json"
        subprocess.run(
            [a.python, str(ROOT / "benches/small_data.py"), "--sora", a.sora, "--sets", name,
             "--repeats", str(a.repeats), "--sora-args", shlex.join(best),
             "--json", str(report)],
            check=True, cwd=ROOT,
        )
        results.append({
            "set": name,
            "tune_seconds": seconds,
            "trials": trials,
            "best": best,
            "comparison": json.loads(report.read_text()),
        })
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
