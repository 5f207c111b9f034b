#!/usr/bin/env python3
"""Sora's cross-validated tabular models against L2 logistic regression, on the same folds.

What it measures
----------------
For each small tabular data set (heart, wdbc, pima, german; taiwan optionally):

1. ``sora train --data FILE --target COL --cv 5 --repeats R --seed S --progress quiet
   --out WORKDIR/<set>`` is run once; its ``cv.json`` lists every fold (``repeat``, ``fold``,
   ``n_train``, ``n_valid``, ``n_test``, ``test`` = the fold's test examples as 0-based
   positions among the table's rows that have a target value, in file order) with Sora's
   metrics on it.
2. On every one of those folds a scikit-learn baseline is fitted on the fold's complement
   (every labelled row not in ``test``: Sora's training *and* validation parts) and scored
   on ``test``: numeric columns -> median imputation + StandardScaler, text columns ->
   most-frequent imputation + OneHotEncoder(handle_unknown="ignore"), then L2
   LogisticRegression (max_iter=5000) whose C is chosen by GridSearchCV over
   ``np.logspace(-3, 3, 13)`` with an inner StratifiedKFold(5, shuffle=True, random_state=0)
   scored by neg_log_loss, refitted on the fold's training rows.
3. Per set: Sora's and LR's mean ± sd accuracy and AUROC over the folds (sample sd), and the
   per-fold paired difference Sora − LR with mean ± 1.96·sd/sqrt(n_folds). The folds of
   repeated K-fold CV share training rows, so they are not independent and that interval is
   optimistic (too narrow); the count of folds where Sora ≥ LR is given next to it.

``--isolation-forest`` adds an anomaly baseline (Sora's own detector does not exist yet):
WDBC with benign rows as normal and malignant ones as anomalies, Taiwan credit with
non-default rows as normal and defaults as anomalies. ``anomaly_split`` puts a seeded random
60 % of the normal rows in training; IsolationForest(n_estimators=200, random_state=seed) is
fitted on them only and scored on the other normal rows plus every anomaly: AUROC, and the
precision (and recall) at the threshold that flags 5 % of the held-out normal rows
(false-positive rate 0.05), mean ± sd over 5 seeds.

The CSV files are read with the same missing-value markers as Sora ("", NA, N/A, ?, nan, NaN,
null); a column is numeric when every present cell parses as a number, as Sora decides.
Class labels are ordered as Sora orders them (numerically when all look like numbers,
otherwise as text; with ``--target-above`` class 1 is "above"), and LR's AUROC is that of
class 1, as Sora's. The order is checked against the per-class supports in cv.json.

Everything is seeded (Sora's --seed, the inner CV, the forests), no network is used.

How to run (from the repository root; Python with numpy and scikit-learn, e.g. .venv-ref):

    .venv-ref/bin/python benches/small_data.py --sora target/release/sora \\
        --sets heart,wdbc,pima,german --repeats 3 --isolation-forest --json /tmp/small_data.json

    # the 30,000-row Taiwan set is slow; it takes its own, smaller repeat count:
    .venv-ref/bin/python benches/small_data.py --sets taiwan --repeats-large 1

    # only the isolation-forest baseline:
    .venv-ref/bin/python benches/small_data.py --sets none --isolation-forest

It prints a Markdown table (and the isolation-forest figures) on stdout, progress on stderr,
and writes every fold's figures to ``--json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import IsolationForest
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Sora's DEFAULT_MISSING_MARKERS (crates/sora-data/src/schema.rs).
MISSING_MARKERS = frozenset(["", "NA", "N/A", "?", "nan", "NaN", "null"])

C_GRID = np.logspace(-3, 3, 13)
INNER_FOLDS = 5
Z_95 = 1.96
ANOMALY_TRAIN_FRACTION = 0.6
ANOMALY_FPR = 0.05
ANOMALY_SEEDS = 5
IFOREST_TREES = 200


@dataclass(frozen=True)
class DataSet:
    """One benchmark table and how to read its target."""

    name: str
    path: str  # relative to the repository root
    target: str
    target_above: float | None = None
    ignore: tuple[str, ...] = ()  # columns neither side may use
    large: bool = False  # slow: optional, cross-validated with --repeats-large
    sora_args: tuple[str, ...] = ()


DATASETS: dict[str, DataSet] = {
    d.name: d
    for d in [
        DataSet("heart", "data/heart_cleveland/heart_cleveland.csv", "num", target_above=0.0),
        DataSet("wdbc", "data/breast_cancer_wdbc/breast_cancer.csv", "target"),
        DataSet("pima", "data/pima_diabetes/pima_diabetes.csv", "outcome"),
        DataSet("german", "data/german_credit/german_credit.csv", "class"),
        # Sora detects `ID` as an identifier by itself (integer, all distinct, named id);
        # --ignore says so explicitly, so both sides leave it out whatever the detection.
        DataSet(
            "taiwan",
            "data/credit_default_taiwan/credit_default.csv",
            "default_payment_next_month",
            ignore=("ID",),
            large=True,
            sora_args=("--ignore", "ID"),
        ),
    ]
}
DEFAULT_SETS = ["heart", "wdbc", "pima", "german"]


@dataclass(frozen=True)
class AnomalySet:
    """A labelled table read as normal rows plus anomalies."""

    name: str
    path: str
    target: str
    normal_label: str  # the target's text on normal rows; every other value is an anomaly
    ignore: tuple[str, ...] = ()
    note: str = ""


ANOMALY_SETS: dict[str, AnomalySet] = {
    a.name: a
    for a in [
        AnomalySet(
            "wdbc",
            "data/breast_cancer_wdbc/breast_cancer.csv",
            "target",
            normal_label="1",
            note="target 1 = benign (normal), 0 = malignant (anomaly), scikit-learn's encoding",
        ),
        AnomalySet(
            "taiwan",
            "data/credit_default_taiwan/credit_default.csv",
            "default_payment_next_month",
            normal_label="0",
            ignore=("ID",),
            note="0 = no default (normal), 1 = default (anomaly); ID left out",
        ),
    ]
}


# ----------------------------------------------------------------------------- reading data


@dataclass
class Table:
    """A CSV file's labelled rows: features as text cells, missing cells as None."""

    headers: list[str]  # feature columns, in file order
    cells: list[list[str | None]]  # labelled rows × feature columns
    target: list[str]  # the target's cell of each labelled row
    n_file_rows: int


def is_missing(cell: str) -> bool:
    return cell.strip() in MISSING_MARKERS


def read_table(path: str, target: str, ignore: tuple[str, ...] = ()) -> Table:
    """Reads `path`, keeping the rows with a target value, in file order (Sora's examples)."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], [r for r in rows[1:] if r]
    if target not in header:
        raise SystemExit(f"{path}: no target column `{target}` (columns: {', '.join(header)})")
    for col in ignore:
        if col not in header:
            raise SystemExit(f"{path}: no column `{col}` to ignore")
    t = header.index(target)
    keep = [i for i, h in enumerate(header) if i != t and h not in ignore]
    labelled = [r for r in body if not is_missing(r[t])]
    return Table(
        headers=[header[i] for i in keep],
        cells=[[None if is_missing(r[i]) else r[i].strip() for i in keep] for r in labelled],
        target=[r[t].strip() for r in labelled],
        n_file_rows=len(body),
    )


def parses_as_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def split_kinds(table: Table) -> tuple[list[int], list[int]]:
    """Numeric columns (every present cell a number, as Sora decides) and text columns."""
    numeric, categorical = [], []
    for j in range(len(table.headers)):
        present = [row[j] for row in table.cells if row[j] is not None]
        (numeric if all(parses_as_number(c) for c in present) else categorical).append(j)
    return numeric, categorical


def feature_matrix(table: Table, numeric: list[int], categorical: list[int]) -> np.ndarray:
    """An object array: numeric columns as floats (NaN when missing), then text columns."""
    n = len(table.cells)
    x = np.empty((n, len(numeric) + len(categorical)), dtype=object)
    for k, j in enumerate(numeric):
        x[:, k] = [np.nan if row[j] is None else float(row[j]) for row in table.cells]
    for k, j in enumerate(categorical):
        x[:, len(numeric) + k] = [np.nan if row[j] is None else row[j] for row in table.cells]
    return x


def sora_class_order(labels: list[str]) -> list[str]:
    """The classes sorted as Sora sorts them: numerically when all parse, else as text."""
    distinct = sorted(set(labels))
    if all(parses_as_number(c) for c in distinct):
        return sorted(distinct, key=float)
    return distinct


def encode_target(table: Table, data: DataSet) -> tuple[np.ndarray, list[str]]:
    """Class indices in Sora's order, and the class names."""
    if data.target_above is not None:
        y = np.array([float(v) > data.target_above for v in table.target], dtype=int)
        return y, [f"<= {data.target_above:g}", f"> {data.target_above:g}"]
    classes = sora_class_order(table.target)
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[v] for v in table.target], dtype=int), classes


# ----------------------------------------------------------------------------- Sora side


def run_sora(
    sora: str, data: DataSet, repeats: int, seed: int, extra: list[str], out_dir: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Runs `sora train --cv 5` on `data`; returns cv.json and how the run went."""
    cmd = [
        sora, "train",
        "--data", os.path.join(REPO_ROOT, data.path),
        "--target", data.target,
        *(["--target-above", f"{data.target_above:g}"] if data.target_above is not None else []),
        "--cv", "5",
        "--repeats", str(repeats),
        "--seed", str(seed),
        "--progress", "quiet",
        "--out", out_dir,
        *data.sora_args,
        *extra,
    ]  # fmt: skip
    log(f"[{data.name}] {shlex.join(cmd)}")
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    run = {
        "command": shlex.join(cmd),
        "returncode": proc.returncode,
        "seconds": seconds,
        "stdout": proc.stdout[-20000:],
        "stderr": proc.stderr[-20000:],
    }
    if proc.returncode != 0:
        return {}, run
    with open(os.path.join(out_dir, "cv.json"), encoding="utf-8") as f:
        return json.load(f), run


def classification_metrics(fold: dict[str, Any]) -> dict[str, Any]:
    metrics = fold["metrics"]
    if metrics.get("task") != "classification":
        raise SystemExit(f"cv.json fold {fold['repeat']}/{fold['fold']}: not a classification")
    return metrics


def sora_classes(model_dir: str) -> list[str] | None:
    """The class names in Sora's label order, from the model's pipeline.json (if there)."""
    try:
        with open(os.path.join(model_dir, "pipeline.json"), encoding="utf-8") as f:
            return json.load(f)["target_encoding"].get("classes")
    except (OSError, KeyError, ValueError):
        return None


def check_class_order(folds: list[dict[str, Any]], y: np.ndarray, n_classes: int) -> None:
    """Sora's per-class supports on every fold must match our labels' counts."""
    for fold in folds:
        supports = [c["support"] for c in classification_metrics(fold)["per_class"]]
        ours = np.bincount(y[fold["test"]], minlength=n_classes).tolist()
        if supports != ours:
            raise SystemExit(
                f"fold {fold['repeat']}/{fold['fold']}: Sora's class supports {supports} "
                f"differ from ours {ours}: the class order or the examples disagree"
            )


# ----------------------------------------------------------------------------- LR side


def to_float(x: np.ndarray) -> np.ndarray:
    """The numeric columns of the object feature array, as floats (NaN = missing)."""
    return np.asarray(x, dtype=float)


def lr_pipeline(n_numeric: int, n_categorical: int) -> GridSearchCV:
    steps = []
    if n_numeric:
        steps.append((
            "numeric",
            Pipeline([
                ("float", FunctionTransformer(to_float)),
                ("impute", SimpleImputer(strategy="median")),
                ("scale", StandardScaler()),
            ]),
            list(range(n_numeric)),
        ))  # fmt: skip
    if n_categorical:
        steps.append((
            "categorical",
            Pipeline([
                ("impute", SimpleImputer(strategy="most_frequent")),
                ("onehot", OneHotEncoder(handle_unknown="ignore")),
            ]),
            list(range(n_numeric, n_numeric + n_categorical)),
        ))  # fmt: skip
    model = Pipeline([
        ("prepare", ColumnTransformer(steps)),
        # l1_ratio=0 is the L2 penalty (scikit-learn ≥ 1.8 deprecates penalty="l2").
        ("lr", LogisticRegression(l1_ratio=0.0, max_iter=5000)),
    ])  # fmt: skip
    return GridSearchCV(
        model,
        {"lr__C": C_GRID},
        scoring="neg_log_loss",
        cv=StratifiedKFold(INNER_FOLDS, shuffle=True, random_state=0),
        refit=True,
    )


def fit_lr_fold(
    x: np.ndarray, y: np.ndarray, test: list[int], n_numeric: int, n_categorical: int
) -> dict[str, Any]:
    is_test = np.zeros(len(y), dtype=bool)
    is_test[test] = True
    search = lr_pipeline(n_numeric, n_categorical)
    start = time.perf_counter()
    x_train, x_test = x[~is_test], x[is_test]
    search.fit(x_train, y[~is_test])
    proba = search.predict_proba(x_test)
    seconds = time.perf_counter() - start
    classes = list(search.classes_)
    # Columns of proba in our class-index order (a class absent from training has none).
    full = np.zeros((len(x_test), int(y.max()) + 1))
    for k, c in enumerate(classes):
        full[:, c] = proba[:, k]
    y_test = y[is_test]
    predicted = full.argmax(axis=1)
    auroc = float(roc_auc_score(y_test, full[:, 1])) if len(set(y_test)) == 2 else None
    return {
        "n_train": int((~is_test).sum()),
        "n_test": int(is_test.sum()),
        "C": float(search.best_params_["lr__C"]),
        "accuracy": float(accuracy_score(y_test, predicted)),
        "auroc": auroc,
        "loss": float(log_loss(y_test, full, labels=list(range(full.shape[1])))),
        "seconds": seconds,
    }


# ----------------------------------------------------------------------------- statistics


def mean_sd(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=float)
    return {
        "mean": float(a.mean()),
        "sd": float(a.std(ddof=1)) if len(a) > 1 else 0.0,
        "n": len(a),
    }


def paired(sora: list[float], lr: list[float]) -> dict[str, float]:
    """Sora − LR per fold: mean, sd, mean ± 1.96·sd/√n (optimistic: folds are dependent)."""
    d = np.asarray(sora, dtype=float) - np.asarray(lr, dtype=float)
    s = mean_sd(d.tolist())
    half = Z_95 * s["sd"] / math.sqrt(len(d))
    return {
        **s,
        "ci95_low": s["mean"] - half,
        "ci95_high": s["mean"] + half,
        "sora_ge_lr": int((d >= 0).sum()),
    }


def fmt_ms(s: dict[str, float], digits: int = 3) -> str:
    return f"{s['mean']:.{digits}f} ± {s['sd']:.{digits}f}"


def fmt_delta(p: dict[str, float]) -> str:
    return (
        f"{p['mean']:+.3f} [{p['ci95_low']:+.3f}, {p['ci95_high']:+.3f}] "
        f"({p['sora_ge_lr']}/{p['n']} ≥)"
    )


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- one set


def compare_set(
    data: DataSet, sora: str, repeats: int, seed: int, extra: list[str], workdir: str
) -> dict[str, Any]:
    table = read_table(os.path.join(REPO_ROOT, data.path), data.target, data.ignore)
    y, classes = encode_target(table, data)
    numeric, categorical = split_kinds(table)
    x = feature_matrix(table, numeric, categorical)
    result: dict[str, Any] = {
        "set": data.name,
        "path": data.path,
        "target": data.target,
        "target_above": data.target_above,
        "ignored": list(data.ignore),
        "rows": len(y),
        "file_rows": table.n_file_rows,
        "classes": classes,
        "class_counts": np.bincount(y).tolist(),
        "numeric_columns": [table.headers[j] for j in numeric],
        "categorical_columns": [table.headers[j] for j in categorical],
        "repeats": repeats,
    }
    cv, run = run_sora(sora, data, repeats, seed, extra, os.path.join(workdir, data.name))
    result["sora_run"] = run
    if run["returncode"] != 0:
        log(f"[{data.name}] Sora failed (exit {run['returncode']}):\n{run['stderr'][-2000:]}")
        result["error"] = f"sora exited with {run['returncode']}"
        return result
    log(f"[{data.name}] Sora: {len(cv['folds'])} folds in {run['seconds']:.1f} s")
    if len(y) != sum(f["n_test"] for f in cv["folds"]) // cv["repeats"]:
        raise SystemExit(f"[{data.name}] Sora's folds do not cover our {len(y)} labelled rows")
    check_class_order(cv["folds"], y, len(classes))
    result["sora_classes"] = sora_classes(os.path.join(workdir, data.name))
    if data.target_above is None and result["sora_classes"] not in (None, classes):
        raise SystemExit(f"[{data.name}] Sora's classes {result['sora_classes']} != ours {classes}")
    result["sora_cv"] = {k: cv[k] for k in ("k", "repeats", "group", "stratified", "seed")}
    result["sora_summary"] = cv.get("summary", [])

    folds = []
    lr_start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)  # unknown categories in a fold
        for fold in cv["folds"]:
            metrics = classification_metrics(fold)
            lr = fit_lr_fold(x, y, fold["test"], len(numeric), len(categorical))
            folds.append({
                "repeat": fold["repeat"],
                "fold": fold["fold"],
                "n_test": fold["n_test"],
                "sora": {
                    "n_train": fold["n_train"],
                    "n_valid": fold["n_valid"],
                    "accuracy": metrics["accuracy"],
                    "auroc": metrics.get("auroc"),
                    "loss": metrics["loss"],
                },
                "lr": lr,
                "test": fold["test"],
            })  # fmt: skip
            log(
                f"[{data.name}] fold {fold['repeat']}/{fold['fold']}: "
                f"acc Sora {metrics['accuracy']:.3f} LR {lr['accuracy']:.3f}, "
                f"AUROC Sora {metrics.get('auroc') or float('nan'):.3f} "
                f"LR {lr['auroc'] or float('nan'):.3f} (C={lr['C']:g}, {lr['seconds']:.1f} s)"
            )
    result["lr_seconds"] = time.perf_counter() - lr_start
    result["folds"] = folds

    summary: dict[str, Any] = {}
    for metric in ("accuracy", "auroc", "loss"):
        both = [f for f in folds if f["sora"][metric] is not None and f["lr"][metric] is not None]
        s = [f["sora"][metric] for f in both]
        l_ = [f["lr"][metric] for f in both]
        summary[metric] = {"sora": mean_sd(s), "lr": mean_sd(l_), "sora_minus_lr": paired(s, l_)}
    result["summary"] = summary
    return result


# ----------------------------------------------------------------------------- anomalies


def anomaly_split(
    normal: np.ndarray, anomalous: np.ndarray, seed: int, train_fraction: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The one place the anomaly split is made (to be matched by Sora's detector later).

    `normal` and `anomalous` are row positions. A seeded random `train_fraction` of the
    normal rows (rounded down) trains; the rest of the normal rows and every anomaly are
    held out. Returns (train rows, held-out rows, held-out is-anomaly flags), the held-out
    rows being the held-out normal rows (in the permuted order) then the anomalies (in
    file order).
    """
    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(normal)
    n_train = int(math.floor(train_fraction * len(normal)))
    train = np.sort(shuffled[:n_train])
    held_normal = np.sort(shuffled[n_train:])
    test = np.concatenate([held_normal, anomalous])
    is_anomaly = np.concatenate([np.zeros(len(held_normal), bool), np.ones(len(anomalous), bool)])
    return train, test, is_anomaly


def at_normal_fpr(scores: np.ndarray, is_anomaly: np.ndarray, fpr: float) -> dict[str, float]:
    """Flags scores above the (1 − fpr) quantile of the held-out normal rows' scores."""
    threshold = float(np.quantile(scores[~is_anomaly], 1.0 - fpr))
    flagged = scores > threshold
    tp = int((flagged & is_anomaly).sum())
    fp = int((flagged & ~is_anomaly).sum())
    return {
        "threshold": threshold,
        "precision": tp / (tp + fp) if tp + fp else float("nan"),
        "recall": tp / int(is_anomaly.sum()),
        "fpr": fp / int((~is_anomaly).sum()),
        "flagged": tp + fp,
    }


def isolation_forest_set(a: AnomalySet, seed: int) -> dict[str, Any]:
    table = read_table(os.path.join(REPO_ROOT, a.path), a.target, a.ignore)
    numeric, categorical = split_kinds(table)
    if categorical:
        raise SystemExit(f"{a.name}: text columns {categorical}: the forest needs numbers")
    x = feature_matrix(table, numeric, []).astype(float)
    if np.isnan(x).any():
        raise SystemExit(f"{a.name}: missing values: the forest needs complete rows")
    labels = np.array(table.target)
    normal = np.flatnonzero(labels == a.normal_label)
    anomalous = np.flatnonzero(labels != a.normal_label)
    runs = []
    start = time.perf_counter()
    for s in range(seed, seed + ANOMALY_SEEDS):
        train, test, is_anomaly = anomaly_split(normal, anomalous, s, ANOMALY_TRAIN_FRACTION)
        forest = IsolationForest(n_estimators=IFOREST_TREES, random_state=s).fit(x[train])
        scores = -forest.score_samples(x[test])  # higher = more anomalous
        runs.append({
            "seed": s,
            "n_train": len(train),
            "n_test_normal": int((~is_anomaly).sum()),
            "n_test_anomalies": int(is_anomaly.sum()),
            "auroc": float(roc_auc_score(is_anomaly, scores)),
            f"at_fpr_{ANOMALY_FPR:g}": at_normal_fpr(scores, is_anomaly, ANOMALY_FPR),
        })  # fmt: skip
    seconds = time.perf_counter() - start
    key = f"at_fpr_{ANOMALY_FPR:g}"
    return {
        "set": a.name,
        "path": a.path,
        "note": a.note,
        "features": [table.headers[j] for j in numeric],
        "n_normal": len(normal),
        "n_anomalies": len(anomalous),
        "train_fraction": ANOMALY_TRAIN_FRACTION,
        "fpr": ANOMALY_FPR,
        "n_estimators": IFOREST_TREES,
        "runs": runs,
        "summary": {
            "auroc": mean_sd([r["auroc"] for r in runs]),
            "precision": mean_sd([r[key]["precision"] for r in runs]),
            "recall": mean_sd([r[key]["recall"] for r in runs]),
        },
        "seconds": seconds,
    }


# ----------------------------------------------------------------------------- output


def markdown_table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| set | rows | Sora acc | LR acc | Sora AUROC | LR AUROC | paired Δ acc | paired Δ AUROC |",
        "|---|---:|---|---|---|---|---|---|",
    ]
    for r in results:
        if "summary" not in r:
            lines.append(f"| {r['set']} | {r['rows']} | {r.get('error', 'no result')} |||||||")
            continue
        acc, auc = r["summary"]["accuracy"], r["summary"]["auroc"]
        lines.append(
            f"| {r['set']} | {r['rows']} | {fmt_ms(acc['sora'])} | {fmt_ms(acc['lr'])} | "
            f"{fmt_ms(auc['sora'])} | {fmt_ms(auc['lr'])} | {fmt_delta(acc['sora_minus_lr'])} | "
            f"{fmt_delta(auc['sora_minus_lr'])} |"
        )
    return "\n".join(lines)


def anomaly_table(results: list[dict[str, Any]]) -> str:
    lines = [
        f"| set | normal | anomalies | IF AUROC | IF precision @ FPR {ANOMALY_FPR:g} | "
        f"IF recall @ FPR {ANOMALY_FPR:g} |",
        "|---|---:|---:|---|---|---|",
    ]
    for r in results:
        s = r["summary"]
        lines.append(
            f"| {r['set']} | {r['n_normal']} | {r['n_anomalies']} | {fmt_ms(s['auroc'])} | "
            f"{fmt_ms(s['precision'])} | {fmt_ms(s['recall'])} |"
        )
    return "\n".join(lines)


def parse_sets(text: str, known: dict[str, Any], what: str) -> list[str]:
    if text.strip().lower() == "none":
        return []
    if text.strip().lower() == "all":
        return list(known)
    names = [s.strip() for s in text.split(",") if s.strip()]
    for n in names:
        if n not in known:
            raise SystemExit(f"unknown {what} `{n}` (known: {', '.join(known)}, all, none)")
    return names


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="See the module docstring (head benches/small_data.py) for what is measured.",
    )
    parser.add_argument("--sora", default="target/release/sora", help="the sora binary")
    parser.add_argument(
        "--sets",
        default=",".join(DEFAULT_SETS),
        help=f"comma-separated sets among {', '.join(DATASETS)}, or all, or none "
        f"(default: %(default)s; taiwan, 30,000 rows, is slow)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="CV repeats (default 3)")
    parser.add_argument(
        "--repeats-large", type=int, default=1, help="CV repeats of the large set taiwan (default 1)"
    )
    parser.add_argument("--seed", type=int, default=0, help="Sora's --seed and the first IF seed")
    parser.add_argument(
        "--sora-args", default="", help="extra arguments for `sora train` (one shell-quoted string)"
    )
    parser.add_argument(
        "--workdir", help="where Sora's runs go (default: a temporary folder, deleted afterwards)"
    )
    parser.add_argument("--json", default="small_data.json", help="the JSON output file")
    parser.add_argument(
        "--isolation-forest", action="store_true", help="also run the isolation-forest baseline"
    )
    parser.add_argument(
        "--anomaly-sets",
        default=",".join(ANOMALY_SETS),
        help=f"isolation-forest sets among {', '.join(ANOMALY_SETS)} (default: %(default)s)",
    )
    args = parser.parse_args()

    sets = parse_sets(args.sets, DATASETS, "set")
    anomaly_sets = parse_sets(args.anomaly_sets, ANOMALY_SETS, "anomaly set") if args.isolation_forest else []
    sora = os.path.abspath(args.sora)
    if sets and not os.access(sora, os.X_OK):
        raise SystemExit(f"{sora}: not an executable (build it, or pass --sora)")
    extra = shlex.split(args.sora_args)

    started = time.perf_counter()
    output: dict[str, Any] = {
        "command": shlex.join([sys.executable, *sys.argv]),
        "sora": sora,
        "seed": args.seed,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "sklearn": sklearn.__version__,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "lr": {
            "C_grid": C_GRID.tolist(),
            "inner_cv": f"StratifiedKFold({INNER_FOLDS}, shuffle=True, random_state=0)",
            "scoring": "neg_log_loss",
            "penalty": "l2 (l1_ratio=0)",
            "max_iter": 5000,
        },
        "interval_note": (
            "paired Δ = Sora − LR per fold, mean ± 1.96·sd/√n_folds; the folds of repeated CV "
            "share training rows and are not independent, so this interval is optimistic"
        ),
        "sets": [],
        "isolation_forest": [],
    }

    def save() -> None:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(output, f, indent=1)

    with tempfile.TemporaryDirectory(prefix="sora-small-data-") as tmp:
        workdir = args.workdir or tmp
        for name in sets:
            data = DATASETS[name]
            repeats = args.repeats_large if data.large else args.repeats
            t0 = time.perf_counter()
            result = compare_set(data, sora, repeats, args.seed, extra, workdir)
            result["seconds"] = time.perf_counter() - t0
            output["sets"].append(result)
            save()
    for name in anomaly_sets:
        log(f"[isolation-forest {name}] ...")
        output["isolation_forest"].append(isolation_forest_set(ANOMALY_SETS[name], args.seed))
        save()
    output["seconds"] = time.perf_counter() - started
    save()

    if output["sets"]:
        print(markdown_table(output["sets"]))
        print()
        print(
            "Mean ± sd over the folds (sample sd). Paired Δ = Sora − LR per fold: mean "
            "[mean ± 1.96·sd/√n] (k/n folds with Sora ≥ LR). The folds of repeated CV share "
            "training rows and are not independent: the interval is optimistic. LR is fitted on "
            "each fold's whole complement (Sora's training and validation parts)."
        )
        print()
        for r in output["sets"]:
            if "summary" in r:
                print(
                    f"- {r['set']}: {len(r['folds'])} folds ({r['repeats']} × 5); Sora "
                    f"{r['sora_run']['seconds']:.1f} s, LR {r['lr_seconds']:.1f} s; "
                    f"log loss Sora {fmt_ms(r['summary']['loss']['sora'])}, "
                    f"LR {fmt_ms(r['summary']['loss']['lr'])}"
                )
    if output["isolation_forest"]:
        print()
        print(anomaly_table(output["isolation_forest"]))
        print()
        print(
            f"IsolationForest({IFOREST_TREES} trees) fitted on {ANOMALY_TRAIN_FRACTION:.0%} of the "
            f"normal rows; scored on the rest + every anomaly; threshold flags {ANOMALY_FPR:.0%} "
            f"of the held-out normal rows; mean ± sd over {ANOMALY_SEEDS} seeds."
        )
        for r in output["isolation_forest"]:
            print(f"- {r['set']}: {r['note']}; {r['seconds']:.1f} s")
    log(f"wrote {args.json} ({output['seconds']:.1f} s in all)")


if __name__ == "__main__":
    main()
