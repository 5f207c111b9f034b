#!/usr/bin/env python3
"""Seed spread of a single model against an ensemble (`sora train --ensemble N`).

For each of several seeds, trains one model and one ensemble of N members on the same
training data, and scores both on data no model saw:

* heart: the heart-disease table split once (stratified, fixed RNG) into 80 % to train on
  and 20 % to score on;
* fsdd: spoken digits, trained on three speakers' clips and scored on the fourth speaker's
  (new-speaker accuracy), with `--held-out-speaker`.

Two protocols: `all`, where the seed moves the model's own validation and test split, its
initial weights and its shuffling; `weights`, where the split is fixed (`--split-seed`) and
the seed moves only the weights and the shuffling. An ensemble's members share the run's
split and take the seeds `S, S+1, …, S+N−1`. Seeds are
spaced apart so no two ensembles share a member. Reported: each score per seed, and the
standard deviation over seeds for the single model and for the ensemble.

    python3 benches/seed_spread.py --sora target/release/sora --sets heart,fsdd

Writes `--json` (default `target/seed_spread.json`) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCORE = re.compile(r"accuracy (\d\.\d+).*?AUROC (\d\.\d+)")
ACCURACY = re.compile(r"accuracy (\d\.\d+)")


def run(args: list[str]) -> str:
    done = subprocess.run(args, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def scores(text: str) -> dict[str, float]:
    """The accuracy (and AUROC, for two classes) of `sora eval`'s report."""
    for line in text.splitlines():
        m = SCORE.search(line)
        if m:
            return {"accuracy": float(m.group(1)), "auroc": float(m.group(2))}
        m = ACCURACY.search(line)
        if m and line.lstrip().startswith("accuracy"):
            return {"accuracy": float(m.group(1))}
    sys.exit(f"no accuracy in:\n{text}")


def heart_split(tmp: Path) -> tuple[Path, Path, list[str]]:
    rows = list(csv.reader(open(ROOT / "data/heart_cleveland/heart_cleveland.csv")))
    header, body = rows[0], rows[1:]
    target = header.index("num")
    rng = random.Random(0)
    train, test = [], []
    for sick in (False, True):
        group = [r for r in body if (float(r[target]) > 0) == sick]
        rng.shuffle(group)
        cut = round(len(group) * 0.2)
        test += group[:cut]
        train += group[cut:]
    paths = []
    for name, part in (("train.csv", train), ("test.csv", test)):
        path = tmp / name
        with open(path, "w", newline="") as f:
            csv.writer(f).writerows([header] + part)
        paths.append(path)
    args = ["--target", "num", "--target-above", "0"]
    return paths[0], paths[1], args


def fsdd_split(tmp: Path, held_out: str) -> tuple[Path, Path, list[str]]:
    source = ROOT / "data/fsdd"
    train, test = tmp / "train", tmp / "test"
    for digit in sorted(p for p in source.iterdir() if p.is_dir()):
        for clip in digit.glob("*.wav"):
            speaker = clip.stem.split("_")[1]
            where = test if speaker == held_out else train
            (where / digit.name).mkdir(parents=True, exist_ok=True)
            os.symlink(clip, where / digit.name / clip.name)
    return train, test, []


def measure(
    sora: str,
    name: str,
    train: Path,
    test: Path,
    args: list[str],
    seeds: list[int],
    members: int,
    split_seed: int | None,
) -> dict:
    if split_seed is not None:
        args = [*args, "--split-seed", str(split_seed)]
        name = f"{name}, split fixed"
    out: dict = {"set": name, "members": members, "split_seed": split_seed, "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            for n in (1, members):
                model = Path(tmp) / f"m{seed}_{n}"
                extra = ["--ensemble", str(n)] if n > 1 else []
                start = time.monotonic()
                run(
                    [sora, "train", "--data", str(train), *args, "--seed", str(seed),
                     "--progress", "quiet", "--out", str(model), *extra]
                )
                seconds = time.monotonic() - start
                got = scores(run([sora, "eval", "--model", str(model), "--data", str(test)]))
                out["runs"].append({"seed": seed, "members": n, "seconds": seconds, **got})
                print(f"{name} seed {seed} members {n}: {got} ({seconds:.1f} s)", flush=True)
    for n in (1, members):
        for metric in ("accuracy", "auroc"):
            values = [r[metric] for r in out["runs"] if r["members"] == n and metric in r]
            if len(values) > 1:
                out[f"{metric}_{n}"] = {
                    "mean": statistics.mean(values),
                    "sd": statistics.stdev(values),
                    "values": values,
                }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sora", default=str(ROOT / "target/release/sora"))
    parser.add_argument("--sets", default="heart,fsdd")
    parser.add_argument("--seeds", default="1000,2000,3000,4000,5000")
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--held-out-speaker", default="nicolas")
    parser.add_argument(
        "--protocols",
        default="all,weights",
        help="all: the seed moves the split, the weights and the shuffling; weights: the "
        "split is fixed (--split-seed) and the seed moves the weights and shuffling only",
    )
    parser.add_argument("--split-seed", type=int, default=42)
    parser.add_argument("--json", default=str(ROOT / "target/seed_spread.json"))
    a = parser.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    results = []
    for name in a.sets.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            if name == "heart":
                train, test, args = heart_split(Path(tmp))
            elif name == "fsdd":
                train, test, args = fsdd_split(Path(tmp), a.held_out_speaker)
                name = f"fsdd (new speaker: {a.held_out_speaker})"
            else:
                sys.exit(f"unknown set {name}")
            for protocol in a.protocols.split(","):
                split_seed = {"all": None, "weights": a.split_seed}[protocol]
                results.append(
                    measure(a.sora, name, train, test, args, seeds, a.members, split_seed)
                )
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(results, indent=2))
    print(f"\n| set | metric | single: mean ± sd | ensemble of {a.members}: mean ± sd | sd ratio |")
    print("|---|---|---|---|---:|")
    for r in results:
        for metric in ("accuracy", "auroc"):
            one, many = r.get(f"{metric}_1"), r.get(f"{metric}_{a.members}")
            if one and many:
                ratio = one["sd"] / many["sd"] if many["sd"] > 0 else float("inf")
                print(
                    f"| {r['set']} | {metric} | {one['mean']:.4f} ± {one['sd']:.4f} | "
                    f"{many['mean']:.4f} ± {many['sd']:.4f} | {ratio:.2f} |"
                )


if __name__ == "__main__":
    main()
