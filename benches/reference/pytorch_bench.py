#!/usr/bin/env python3
"""PyTorch reference for the Sora benchmark workloads (see BENCH.md).

Runs one workload in eager mode, float32, on the CPU, and prints exactly one line
of JSON on stdout (everything else goes to stderr), with the same keys as the
Sora side (`cargo bench --bench workloads -- --workload W --device B`), so that
`benches/compare.py` can put the two side by side.

Environment (kept out of the repository and out of CI):

    python3 -m venv .venv-ref && .venv-ref/bin/pip install torch==2.9.0 captum safetensors

(captum is needed only by `explain-ig`; it is imported there, not at start-up.)

Usage:

    .venv-ref/bin/python benches/reference/pytorch_bench.py \\
        --workload {mlp-digits,mlp-wide,cnn-digits,audio-cnn,lstm-text,gru-text,infer,
                    explain-ig,matmul} \\
        [--data data/digits/digits.csv] [--features target/bench/audio-cnn-features.json]
        [--weights FILE] [--threads N]

Workloads:
  mlp-digits  64->128->64->10 ReLU MLP on the 8x8 digits, SGD(lr 0.05, momentum 0.9),
              batch 32, 20 epochs, shuffled every epoch (seed 42); reports training
              samples/s, test accuracy, training seconds (training loop only).
  mlp-wide    512->1024->1024->10 ReLU MLP on 16,384 x 512 standard normal inputs
              (seed 42), label = argmax(x @ W), W 512x10 standard normal;
              SGD(lr 0.01, momentum 0.9), batch 256, 2 epochs; reports samples/s and
              GFLOP/s = 6 * n_params * samples / s.
  cnn-digits  the digits as 1x8x8 images (the standardized pixels of mlp-digits):
              conv3x3(16, pad 1) -> ReLU -> maxpool 2 -> conv3x3(32, pad 1) -> ReLU ->
              global average pool -> linear 10; SGD(lr 0.05, momentum 0.9), batch 32,
              10 epochs, shuffled every epoch (seed 42); reports training samples/s,
              test accuracy, training seconds, n_params.
  audio-cnn   the audio job's default 1-D CNN on MFCC frames of the 2,000 bundled FSDD clips
              (data/fsdd/<digit>/*.wav, 8 kHz), on the very features Sora computed: the Sora
              run (`--workload audio-cnn`) writes them, standardized, to
              target/bench/audio-cnn-features.f32 (float32 little-endian [2000, 13, 101]:
              clips sorted by digit then file name, 13 MFCCs x 101 frames of 256-sample
              windows every 80 samples) with labels and test indices in
              target/bench/audio-cnn-features.json (clip i is a test clip when i % 5 == 0:
              1,600 train, 400 test; each coefficient row standardized with the training
              clips' mean and population sd). Model: Conv1d(13->32, 5, pad 2) -> ReLU ->
              MaxPool1d(2) -> Conv1d(32->64, 5, pad 2) -> ReLU -> MaxPool1d(2) ->
              Conv1d(64->64, 3, pad 1) -> ReLU -> AdaptiveMaxPool1d(1) -> linear 64 -> ReLU ->
              linear 10 (29,578 parameters); SGD(lr 0.01, momentum 0.9), batch 32, 10 epochs,
              shuffled every epoch (seed 42); reports training samples/s, test accuracy,
              training seconds, n_params.
  lstm-text   embedding(10,000, 64) -> LSTM(64->128, 1 layer) -> last hidden state -> linear 2
  gru-text    the same with a GRU(64->128)
              on 3,200 x 64 token ids drawn with SplitMix64 from state 42 (id = draw mod
              10,000, row-major; the Rust side uses the same generator, so both train on the
              same ids), label = first token mod 2; SGD(lr 0.05, momentum 0.9), batch 32,
              100 steps = one pass over the 3,200 sequences in order (no shuffle); reports
              tokens/s = 100 * 32 * 64 / training seconds, the epoch's mean training loss,
              the accuracy on the 3,200 training sequences after it, n_params, ids_sum.
  infer       the trained mlp-digits model in eval/inference mode: median latency of a
              single [1, 64] call (200 warm-up, 2,000 timed) and throughput of a batch
              of 1,024 (the 360 test samples tiled; 10 warm-up, 50 timed).
  explain-ig  the trained mlp-digits model in eval mode: Captum IntegratedGradients over the
              360 standardized test samples as one [360, 64] batch, target = the model's
              predicted class, baseline = zeros, n_steps 50, method "gausslegendre",
              internal_batch_size None (all 360 x 50 scaled rows in one forward/backward),
              return_convergence_delta=True. 1 warm-up call, then 5 timed calls; reports
              samples/s = 360 / median call seconds and the max / mean |delta| of the last
              timed call (delta = sum of a sample's attributions - (F(x)[t] - F(0)[t]): the
              completeness error).
  matmul      2048x2048 @ 2048x2048 float32 (3 warm-up, 10 timed); GFLOP/s = 2 n^3 / s
              of the median call: the machine reference for mlp-wide.

Every run also reports `peak_rss_mib`: VmHWM of the process, in MiB.
"""

import argparse
import array
import csv
import json
import math
import os
import statistics
import sys
import time

import torch
from torch import nn

SEED = 42
AUDIO_CNN_LR = 0.01  # the same as `audio_cnn` in benches/workloads.rs
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_DATA = os.path.join(REPO_ROOT, "data", "digits", "digits.csv")
DEFAULT_AUDIO_FEATURES = os.path.join(REPO_ROOT, "target", "bench", "audio-cnn-features.json")


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def peak_rss_mib():
    """VmHWM (peak resident set size) of this process in MiB, or None if unavailable."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    parts = line.split()
                    kib = float(parts[1])
                    unit = parts[2].lower() if len(parts) > 2 else "kb"
                    if unit != "kb":
                        raise ValueError("unexpected unit " + unit)
                    return kib / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return None


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------

def load_digits(path):
    """Read the digits CSV (header pixel_0..pixel_63,label) with the csv module.

    Returns (x_train, y_train, x_test, y_test): float32 [n, 64] standardized with the
    train mean and population standard deviation (ddof=0; zero -> 1), int64 labels.
    Sample i (file order) is a test sample when i % 5 == 0.
    """
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        label_col = header.index("label")
        feat_cols = [i for i, name in enumerate(header) if name != "label"]
        if len(feat_cols) != 64:
            raise ValueError("expected 64 feature columns, got %d" % len(feat_cols))
        feats, labels = [], []
        for row in reader:
            if not row:
                continue
            feats.append([float(row[i]) for i in feat_cols])
            labels.append(int(float(row[label_col])))
    n = len(feats)
    if n != 1797:
        log("warning: expected 1,797 samples, read %d" % n)
    x = torch.tensor(feats, dtype=torch.float64)
    y = torch.tensor(labels, dtype=torch.int64)
    idx = torch.arange(n)
    test_mask = idx % 5 == 0
    x_train, y_train = x[~test_mask], y[~test_mask]
    x_test, y_test = x[test_mask], y[test_mask]
    # Statistics in float64 from the training split only.
    mean = x_train.mean(dim=0)
    std = x_train.std(dim=0, unbiased=False)
    std = torch.where(std == 0, torch.ones_like(std), std)
    x_train = ((x_train - mean) / std).to(torch.float32).contiguous()
    x_test = ((x_test - mean) / std).to(torch.float32).contiguous()
    return x_train, y_train, x_test, y_test


MASK64 = (1 << 64) - 1


def splitmix64(state):
    """One SplitMix64 step: returns (new state, output), as `splitmix64` in workloads.rs."""
    state = (state + 0x9E3779B97F4A7C15) & MASK64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return state, z ^ (z >> 31)


def lstm_text_data(n=3200, length=64, vocab=10000, seed=SEED):
    """n x length token ids (SplitMix64 draws mod vocab from state `seed`, row-major) and
    labels = first token mod 2: the same data as the Rust side."""
    state, ids = seed, []
    for _ in range(n * length):
        state, z = splitmix64(state)
        ids.append(z % vocab)
    x = torch.tensor(ids, dtype=torch.int64).reshape(n, length)
    y = x[:, 0] % 2
    return x, y


def load_audio_features(path):
    """The audio-cnn features written by Sora's run: (x_train, y_train, x_test, y_test), float32
    [n, 13, 101] standardized MFCC frames and int64 labels, split by the file's test indices."""
    if not os.path.exists(path):
        log("error: %s is missing: the Sora side writes it; run it first:\n"
            "  cargo bench --bench workloads -- --workload audio-cnn" % path)
        sys.exit(2)
    with open(path) as f:
        meta = json.load(f)
    values_path = os.path.join(os.path.dirname(path), meta["values"])
    shape = [int(d) for d in meta["shape"]]
    with open(values_path, "rb") as f:
        raw = f.read()
    if len(raw) != 4 * math.prod(shape):
        raise ValueError("%s holds %d bytes, not the %d of float32 %s given in %s"
                         % (values_path, len(raw), 4 * math.prod(shape), shape, path))
    if sys.byteorder != "little":  # the file is little-endian
        values = array.array("f")
        values.frombytes(raw)
        values.byteswap()
        raw = values.tobytes()
    x = torch.frombuffer(bytearray(raw), dtype=torch.float32).reshape(shape)
    y = torch.tensor(meta["labels"], dtype=torch.int64)
    if y.shape[0] != shape[0]:
        raise ValueError("%s: %d labels for %d clips" % (path, y.shape[0], shape[0]))
    test = torch.zeros(shape[0], dtype=torch.bool)
    test[torch.tensor(meta["test_indices"], dtype=torch.int64)] = True
    return (x[~test].contiguous(), y[~test], x[test].contiguous(), y[test],
            len(meta["classes"]))


def wide_data():
    g = torch.Generator().manual_seed(SEED)
    x = torch.randn(16384, 512, generator=g, dtype=torch.float32)
    w = torch.randn(512, 10, generator=g, dtype=torch.float32)
    y = (x @ w).argmax(dim=1)
    return x, y


# ---------------------------------------------------------------------------
# Models and training
# ---------------------------------------------------------------------------

def mlp_digits_model():
    return nn.Sequential(
        nn.Linear(64, 128), nn.ReLU(),
        nn.Linear(128, 64), nn.ReLU(),
        nn.Linear(64, 10),
    )


def cnn_digits_model():
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(32, 10),
    )


def audio_cnn_model(n_coefficients=13, n_classes=10):
    """Sora's default spec for [rows, frames] features (sora_jobs::media::default_spec):
    convolutions along time with "same" padding (kernel // 2), stride 1; max pooling with
    window = stride = 2, floor; the maximum over time; a head with one hidden layer of 64."""
    return nn.Sequential(
        nn.Conv1d(n_coefficients, 32, 5, padding=2), nn.ReLU(),
        nn.MaxPool1d(2),
        nn.Conv1d(32, 64, 5, padding=2), nn.ReLU(),
        nn.MaxPool1d(2),
        nn.Conv1d(64, 64, 3, padding=1), nn.ReLU(),
        nn.AdaptiveMaxPool1d(1), nn.Flatten(),
        nn.Linear(64, 64), nn.ReLU(),
        nn.Linear(64, n_classes),
    )


def mlp_wide_model():
    return nn.Sequential(
        nn.Linear(512, 1024), nn.ReLU(),
        nn.Linear(1024, 1024), nn.ReLU(),
        nn.Linear(1024, 10),
    )


class LstmText(nn.Module):
    """embedding(vocab, 64) -> LSTM(64 -> 128) (or GRU) -> the last time step's hidden state ->
    linear 2."""

    def __init__(self, vocab=10000, d_embed=64, d_hidden=128, n_classes=2, cell="lstm"):
        super().__init__()
        self.embedding = nn.Embedding(vocab, d_embed)
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        self.lstm = rnn(d_embed, d_hidden, num_layers=1, batch_first=True)
        self.output = nn.Linear(d_hidden, n_classes)

    def forward(self, ids):
        out, _ = self.lstm(self.embedding(ids))
        return self.output(out[:, -1])


def train(model, x, y, lr, batch, epochs, seed=SEED, shuffle=True, mean_loss=False):
    """SGD(momentum 0.9) + cross-entropy, shuffled every epoch with a seeded generator (in
    order with shuffle=False), last partial batch kept. Returns (seconds of the epochs loop,
    samples processed, mean training loss of the last epoch), the last only with mean_loss
    (which sums the batch losses inside the loop, as Sora's trainer does; else None)."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(seed)
    n = x.shape[0]
    model.train()
    samples = 0
    t0 = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(n, generator=g) if shuffle else torch.arange(n)
        loss_sum = torch.zeros(())
        for start in range(0, n, batch):
            idx = perm[start:start + batch]
            xb, yb = x[idx], y[idx]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            if mean_loss:
                loss_sum += loss.detach() * idx.shape[0]
            samples += idx.shape[0]
    seconds = time.perf_counter() - t0
    epoch_loss = loss_sum.item() / n if mean_loss else None
    log("final batch loss %.4f" % loss.item())
    return seconds, samples, epoch_loss


def accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        pred = model(x).argmax(dim=1)
    return (pred == y).float().mean().item()


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def trained_digits_model(data_path):
    x_train, y_train, x_test, y_test = load_digits(data_path)
    torch.manual_seed(SEED)  # parameter initialisation
    model = mlp_digits_model()
    seconds, samples, _ = train(model, x_train, y_train, lr=0.05, batch=32, epochs=20)
    acc = accuracy(model, x_test, y_test)
    return model, x_test, y_test, seconds, samples, acc


# ---------------------------------------------------------------------------
# Workloads
# ---------------------------------------------------------------------------

def run_mlp_digits(args):
    _, _, _, seconds, samples, acc = trained_digits_model(args.data)
    return {
        "samples_per_s": samples / seconds,
        "test_accuracy": acc,
        "train_seconds": seconds,
    }


def run_cnn_digits(args):
    x_train, y_train, x_test, y_test = load_digits(args.data)
    # [n, 64] row-major pixels -> [n, 1, 8, 8] images.
    x_train = x_train.reshape(-1, 1, 8, 8).contiguous()
    x_test = x_test.reshape(-1, 1, 8, 8).contiguous()
    torch.manual_seed(SEED)  # parameter initialisation
    model = cnn_digits_model()
    seconds, samples, _ = train(model, x_train, y_train, lr=0.05, batch=32, epochs=10)
    return {
        "samples_per_s": samples / seconds,
        "test_accuracy": accuracy(model, x_test, y_test),
        "train_seconds": seconds,
        "n_params": n_params(model),
    }


def run_audio_cnn(args):
    x_train, y_train, x_test, y_test, n_classes = load_audio_features(args.features)
    torch.manual_seed(SEED)  # parameter initialisation
    model = audio_cnn_model(x_train.shape[1], n_classes)
    epochs = 10
    seconds, samples, _ = train(model, x_train, y_train, lr=AUDIO_CNN_LR, batch=32,
                                epochs=epochs)
    return {
        "samples_per_s": samples / seconds,
        "test_accuracy": accuracy(model, x_test, y_test),
        "train_seconds": seconds,
        "n_params": n_params(model),
        "n_train": int(x_train.shape[0]),
        "n_test": int(x_test.shape[0]),
        "sample_shape": list(x_train.shape[1:]),
        "epochs": epochs,
    }


def run_lstm_text(args, cell="lstm"):
    n, length, batch = 3200, 64, 32
    x, y = lstm_text_data(n, length)
    torch.manual_seed(SEED)  # parameter initialisation
    model = LstmText(cell=cell)
    seconds, samples, epoch_loss = train(model, x, y, lr=0.05, batch=batch, epochs=1,
                                         shuffle=False, mean_loss=True)
    steps = n // batch
    return {
        "tokens_per_s": steps * batch * length / seconds,
        "train_accuracy": accuracy(model, x, y),
        "train_loss": epoch_loss,
        "train_seconds": seconds,
        "steps": steps,
        "n_params": n_params(model),
        "ids_sum": int(x.sum().item()),
    }


def run_mlp_wide(args):
    x, y = wide_data()
    torch.manual_seed(SEED)
    model = mlp_wide_model()
    seconds, samples, _ = train(model, x, y, lr=0.01, batch=256, epochs=2)
    params = n_params(model)
    return {
        "samples_per_s": samples / seconds,
        "gflops": 6.0 * params * samples / seconds / 1e9,
        "train_seconds": seconds,
        "n_params": params,
    }


def run_infer(args):
    model, x_test, y_test, _, _, acc = trained_digits_model(args.data)
    model.eval()
    single = x_test[0:1].clone().contiguous()  # [1, 64]
    reps = math.ceil(1024 / x_test.shape[0])
    batch = x_test.repeat(reps, 1)[:1024].contiguous()  # [1024, 64]
    with torch.inference_mode():
        for _ in range(200):
            model(single)
        times_ns = []
        for _ in range(2000):
            t0 = time.perf_counter_ns()
            model(single)
            times_ns.append(time.perf_counter_ns() - t0)
        for _ in range(20):
            model(batch)
        # The median call of 300, as for the single sample: a mean over a few milliseconds
        # follows any stall of the machine.
        batch_ns = []
        for _ in range(300):
            t0 = time.perf_counter_ns()
            model(batch)
            batch_ns.append(time.perf_counter_ns() - t0)
    return {
        "single_median_us": statistics.median(times_ns) / 1000.0,
        "batch_samples_per_s": 1024 / (statistics.median(batch_ns) / 1e9),
        "test_accuracy": acc,
    }


def run_explain_ig(args):
    try:
        import captum
        from captum.attr import IntegratedGradients
    except ImportError:
        log("error: explain-ig needs captum: .venv-ref/bin/pip install captum")
        sys.exit(2)
    n_steps, method, internal_batch_size, repeats = 50, "gausslegendre", None, 5
    model, x_test, y_test, _, _, acc = trained_digits_model(args.data)
    if args.weights:
        # Explain the very model Sora explained: its weights, saved by the Rust side as
        # safetensors with PyTorch names ([out, in] linear weights).
        from safetensors.torch import load_file
        tensors = load_file(args.weights)
        names = {0: "head.hidden.0.linear", 2: "head.hidden.1.linear", 4: "head.output"}
        state = {}
        for index, name in names.items():
            state[f"{index}.weight"] = tensors[f"{name}.weight"]
            state[f"{index}.bias"] = tensors[f"{name}.bias"]
        model.load_state_dict(state)
        with torch.no_grad():
            acc = (model(x_test).argmax(dim=1) == y_test).float().mean().item()
    model.eval()
    inputs = x_test.contiguous()  # [360, 64], standardized
    baselines = torch.zeros_like(inputs)
    with torch.no_grad():
        targets = model(inputs).argmax(dim=1)  # predicted class per sample
    ig = IntegratedGradients(model)

    def call():
        return ig.attribute(inputs, baselines=baselines, target=targets, n_steps=n_steps,
                            method=method, internal_batch_size=internal_batch_size,
                            return_convergence_delta=True)

    call()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        attributions, delta = call()
        times.append(time.perf_counter() - t0)
    if attributions.shape != inputs.shape or delta.shape != (inputs.shape[0],):
        raise RuntimeError("unexpected shapes: attributions %s, delta %s"
                           % (tuple(attributions.shape), tuple(delta.shape)))
    abs_delta = delta.detach().abs()
    median = statistics.median(times)
    return {
        "version": "torch %s / captum %s" % (torch.__version__, captum.__version__),
        "samples_per_s": inputs.shape[0] / median,
        "median_call_s": median,
        "max_abs_delta": float(abs_delta.max().item()),
        "mean_abs_delta": float(abs_delta.mean().item()),
        "n_samples": int(inputs.shape[0]),
        "n_steps": n_steps,
        "method": method,
        "internal_batch_size": internal_batch_size,  # None: all 360 x 50 rows at once
        "test_accuracy": acc,
    }


def run_matmul(args):
    n = 2048
    g = torch.Generator().manual_seed(SEED)
    a = torch.randn(n, n, generator=g, dtype=torch.float32)
    b = torch.randn(n, n, generator=g, dtype=torch.float32)
    for _ in range(3):
        torch.mm(a, b)
    times = []
    for _ in range(10):
        t0 = time.perf_counter()
        c = torch.mm(a, b)
        times.append(time.perf_counter() - t0)
    del c
    return {"gflops": 2.0 * n ** 3 / statistics.median(times) / 1e9}


WORKLOADS = {
    "mlp-digits": run_mlp_digits,
    "mlp-wide": run_mlp_wide,
    "cnn-digits": run_cnn_digits,
    "audio-cnn": run_audio_cnn,
    "lstm-text": run_lstm_text,
    "gru-text": lambda args: run_lstm_text(args, cell="gru"),
    "infer": run_infer,
    "explain-ig": run_explain_ig,
    "matmul": run_matmul,
}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workload", required=True, choices=sorted(WORKLOADS))
    p.add_argument("--data", default=DEFAULT_DATA, help="digits CSV (default: %(default)s)")
    p.add_argument("--features", default=DEFAULT_AUDIO_FEATURES,
                   help="audio-cnn: the features Sora's audio-cnn run wrote "
                        "(default: %(default)s)")
    p.add_argument("--weights", default=None,
                   help="explain-ig: explain the model in this safetensors file (Sora's "
                        "target/bench/explain-ig-model.safetensors) instead of training one")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                   help="torch.set_num_threads (default: all cores, %(default)s)")
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    torch.set_default_dtype(torch.float32)
    result = {
        "impl": "pytorch",
        "workload": args.workload,
        "backend": "torch-cpu",
        "version": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    result.update(WORKLOADS[args.workload](args))
    result["peak_rss_mib"] = peak_rss_mib()
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
