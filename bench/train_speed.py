"""Seconds per training step of Penwright's synthesis trainer against a straightforward baseline.

Ours: ``engine.handwriting.training.Trainer.train_step`` (collate, forward with gradient clipping hooks,
backward, gradient-norm clipping, Adam step) on the synthesis network of ``engine.handwriting.model``.

Baseline, written here the way a first implementation usually is: three ``nn.LSTMCell`` layers with skip
connections and the same soft window of K Gaussians, one Python loop over time that runs all three cells
each step (no precomputed input projections, no fused layers), then the same mixture output layer and
loss (``engine.handwriting.model.mixture_nll``), gradient-norm clipping and Adam. It gets the same batch
(through the same ``collate``), the same sizes and the same thread count.

The data are synthetic strokes (every line ``--length`` points, about 23 points per character as in
IAM-OnDB's ``paper`` convention), so no data set is needed. Steps of the two alternate (ours, baseline,
ours, ...) so that load from other processes hits both alike; after warm-up steps, the median of the timed
steps of each is reported, as wall time and as CPU time of the process. The ratio compares CPU time
when one thread is used (``--clock auto``): on a machine busy with other work, wall time mostly measures
how often the scheduler ran us. The last line printed is ``ratio=<ours/baseline>``.

    python bench/train_speed.py                      # hidden 400, 700 points, batch 32, 1 thread
    python bench/train_speed.py --hidden 256 --length 350 --steps 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np
import torch
from torch import nn

from engine.handwriting.alphabet import Alphabet
from engine.handwriting.dataset import Sequences
from engine.handwriting.model import ModelConfig, mixture_nll
from engine.handwriting.preprocessing import Normalizer
from engine.handwriting.training import Trainer, TrainSettings, collate

# The IAM-OnDB alphabet (79 characters) as Penwright builds it.
IAM_CHARACTERS = " !\"%&'()+,-./0123456789:;?ABCDEFGHIJKLMNOPQRSTUVWXYZ[abcdefghijklmnopqrstuvwxyz"
POINTS_PER_CHARACTER = 23.0


def synthetic_lines(count: int, length: int, alphabet_size: int, seed: int = 0) -> Sequences:
    """``count`` lines of ``length`` normalised offsets (pen lifts ~ every 20 points) with their texts."""
    rng = np.random.default_rng(seed)
    chars_per_line = max(1, round(length / POINTS_PER_CHARACTER))
    strokes, chars = [], []
    for _ in range(count):
        s = rng.standard_normal((length, 3)).astype(np.float32)
        s[:, 2] = rng.random(length) < 0.05
        strokes.append(s)
        chars.append(rng.integers(0, alphabet_size, chars_per_line).astype(np.int64))
    ids = [f"synthetic-{i}" for i in range(count)]
    return Sequences(ids, ["x" * chars_per_line] * count, strokes, chars)


def astuple_lines(seqs: Sequences) -> tuple[list, list, list, list]:
    return seqs.ids, seqs.texts, seqs.strokes, seqs.chars


class BaselineNet(nn.Module):
    """Graves' synthesis network as a plain loop of LSTM cells (the usual first implementation)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        H, A, K = config.hidden, config.alphabet_size, config.window
        self.config = config
        self.cells = nn.ModuleList(
            [nn.LSTMCell(3 + A, H)] + [nn.LSTMCell(3 + H + A, H) for _ in range(config.layers - 1)]
        )
        self.window_layer = nn.Linear(H, 3 * K)
        self.output = nn.Linear(H * config.layers, config.output_size)
        with torch.no_grad():  # the same window start as ours: alpha ~ 1, two characters wide, right speed
            nn.init.normal_(self.window_layer.weight, std=0.01)
            self.window_layer.bias[:K] = 0.0
            self.window_layer.bias[K : 2 * K] = float(np.log(0.5))
            self.window_layer.bias[2 * K :] = float(np.log(config.chars_per_step))

    def forward(self, x: torch.Tensor, chars: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        H, A, K, L = self.config.hidden, self.config.alphabet_size, self.config.window, self.config.layers
        text = nn.functional.one_hot(chars.clamp(min=0), A).float() * (chars >= 0).unsqueeze(-1)
        u = torch.arange(text.shape[1], dtype=x.dtype).view(1, 1, -1)
        h = [x.new_zeros(B, H) for _ in range(L)]
        c = [x.new_zeros(B, H) for _ in range(L)]
        kappa, w = x.new_zeros(B, K), x.new_zeros(B, A)
        outputs = []
        for t in range(T):
            x_t = x[:, t]
            h[0], c[0] = self.cells[0](torch.cat([x_t, w], dim=1), (h[0], c[0]))
            alpha, beta, dk = self.window_layer(h[0]).exp().chunk(3, dim=1)
            kappa = kappa + dk
            phi = (alpha.unsqueeze(2) * torch.exp(-beta.unsqueeze(2) * (kappa.unsqueeze(2) - u) ** 2)).sum(1)
            w = torch.bmm(phi.unsqueeze(1), text).squeeze(1)
            for i in range(1, L):
                h[i], c[i] = self.cells[i](torch.cat([x_t, h[i - 1], w], dim=1), (h[i], c[i]))
            outputs.append(torch.cat(h, dim=1))
        return self.output(torch.stack(outputs, dim=1))


def make_ours(config: ModelConfig, lines: Sequences, run_dir: str) -> Trainer:
    alphabet = Alphabet(IAM_CHARACTERS[: config.alphabet_size])
    normalizer = Normalizer((0.0, 0.0), (1.0, 1.0))
    settings = TrainSettings(batch_size=32, validate_lines=0)
    return Trainer(config, alphabet, normalizer, "paper", lines, lines, run_dir, settings, "cpu")


def make_baseline(config: ModelConfig, lines: Sequences, grad_norm: float):
    torch.manual_seed(0)
    model = BaselineNet(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step(index: np.ndarray) -> float:
        batch = collate(lines, index)
        y = model(batch.inputs, batch.chars)
        total = mixture_nll(y, batch.targets, batch.mask, config.mixtures).sum()
        optimizer.zero_grad(set_to_none=True)
        (total / batch.mask.sum()).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_norm)
        optimizer.step()
        return float(total.detach()) / len(index)

    return model, step


def timed(fn, *args) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    loss = fn(*args)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if not np.isfinite(loss):
        raise FloatingPointError("the loss is not finite")
    return wall, cpu


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=400)
    parser.add_argument("--length", type=int, default=700, help="points per line (all lines the same)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=2, help="timed steps of each")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps of each first")
    parser.add_argument(
        "--warmup-length", type=int, default=100, help="points per line in the warm-up steps (0: --length)"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--clock",
        choices=["auto", "cpu", "wall"],
        default="auto",
        help="what the ratio compares; auto: CPU time with 1 thread (robust beside other load), else wall time",
    )
    args = parser.parse_args(argv)
    clock = args.clock if args.clock != "auto" else ("cpu" if args.threads == 1 else "wall")

    torch.set_num_threads(args.threads)
    lines = synthetic_lines(args.batch, args.length, len(IAM_CHARACTERS))
    short = synthetic_lines(args.batch, args.warmup_length or args.length, len(IAM_CHARACTERS), seed=1)
    lines = Sequences(*(a + b for a, b in zip(astuple_lines(lines), astuple_lines(short), strict=True)))
    chars = len(lines.chars[0])
    config = ModelConfig(
        kind="synthesis", hidden=args.hidden, alphabet_size=len(IAM_CHARACTERS), chars_per_step=chars / args.length
    )
    index, warmup_index = np.arange(args.batch), np.arange(args.batch, 2 * args.batch)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = make_ours(config, lines, tmp)
        baseline, baseline_step = make_baseline(config, lines, trainer.settings.grad_norm)
        n_ours = sum(p.numel() for p in trainer.model.parameters())
        n_base = sum(p.numel() for p in baseline.parameters())
        if n_ours != n_base:
            raise AssertionError(f"the networks differ in size: {n_ours} vs {n_base} parameters")
        print(
            f"synthesis network 3x{args.hidden}, {n_ours:,} parameters; batch {args.batch} x {args.length} points, "
            f"{chars} characters, alphabet {config.alphabet_size}; {torch.get_num_threads()} thread(s), "
            f"torch {torch.__version__}",
            flush=True,
        )
        times: dict[str, dict[str, list[float]]] = {
            "ours": {"wall": [], "cpu": []},
            "baseline": {"wall": [], "cpu": []},
        }
        steps = {"ours": trainer.train_step, "baseline": baseline_step}
        for i in range(args.warmup + args.steps):
            for name, fn in steps.items():
                wall, cpu = timed(fn, warmup_index if i < args.warmup else index)
                kind = "warm-up" if i < args.warmup else "timed"
                print(f"  {kind:7s} {name:8s} {wall:7.3f} s wall {cpu:7.3f} s CPU", flush=True)
                if i >= args.warmup:
                    times[name]["wall"].append(wall)
                    times[name]["cpu"].append(cpu)
    med = {name: {k: statistics.median(v) for k, v in t.items()} for name, t in times.items()}
    print()
    print(
        f"batch {args.batch}, {args.length} points, hidden {args.hidden}; "
        f"median of {args.steps} steps after {args.warmup} warm-up steps of {args.warmup_length or args.length} points"
    )
    print(f"{'trainer':10s} {'wall s/step':>12s} {'CPU s/step':>11s} {'min':>8s} {'max':>8s} {'points/s':>10s}")
    for name, t in med.items():
        c = times[name][clock]
        print(
            f"{name:10s} {t['wall']:12.3f} {t['cpu']:11.3f} {min(c):8.3f} {max(c):8.3f} "
            f"{args.batch * args.length / t[clock]:10.0f}"
        )
    other = "wall" if clock == "cpu" else "cpu"
    print(f"{other} time ratio (for reference): {med['ours'][other] / med['baseline'][other]:.4f}")
    print(f"ratio below: {clock} time; min/max and points/s above: {clock} time")
    ratio = med["ours"][clock] / med["baseline"][clock]
    print(f"ours is {1 / ratio:.2f}x the baseline's speed")
    print(f"ratio={ratio:.4f}")
    return ratio


if __name__ == "__main__":
    main()
