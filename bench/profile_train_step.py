"""Where a training step's time goes: torch.profiler tables for our trainer (and the baseline), plus a count
of the step's matrix-multiply work against the single-thread GEMM speed of this machine.

    python bench/profile_train_step.py --hidden 400 --length 300 [--baseline]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

try:
    from bench.train_speed import IAM_CHARACTERS, make_baseline, make_ours, synthetic_lines
except ImportError:  # run as a script: bench/ is on sys.path
    from train_speed import IAM_CHARACTERS, make_baseline, make_ours, synthetic_lines
from engine.handwriting.model import ModelConfig


def step_gflop(config: ModelConfig, batch: int, length: int) -> float:
    """Multiply-add work (GFLOP) of the LSTM and output GEMMs: forward, and twice that for backward."""
    H, A, L = config.hidden, config.alphabet_size, config.layers
    per_point = 4 * H * (3 + A + H) + (L - 1) * 4 * H * (3 + H + A + H) + L * H * config.output_size
    return 3 * 2 * per_point * batch * length / 1e9


def gemm_gflops(hidden: int, seconds: float = 1.0) -> float:
    """Single-thread speed of a (32 x 2H) @ (2H x 4H) GEMM on this machine, right now."""
    a, b = torch.randn(32, 2 * hidden), torch.randn(2 * hidden, 4 * hidden)
    for _ in range(5):
        a @ b
    n, start = 0, time.process_time()
    while time.process_time() - start < seconds:
        a @ b
        n += 1
    return 2 * 32 * 2 * hidden * 4 * hidden * n / (time.process_time() - start) / 1e9


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=400)
    parser.add_argument("--length", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rows", type=int, default=25)
    parser.add_argument("--baseline", action="store_true", help="profile the baseline too")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    lines = synthetic_lines(32, args.length, len(IAM_CHARACTERS))
    config = ModelConfig(
        hidden=args.hidden, alphabet_size=len(IAM_CHARACTERS), chars_per_step=len(lines.chars[0]) / args.length
    )
    index = np.arange(32)
    work = step_gflop(config, 32, args.length)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = make_ours(config, lines, tmp)
        steps = {"ours": trainer.train_step}
        if args.baseline:
            steps["baseline"] = make_baseline(config, lines, 10.0)[1]
        for name, fn in steps.items():
            fn(index)
            cpu = time.process_time()
            fn(index)
            cpu = time.process_time() - cpu
            speed = gemm_gflops(args.hidden)
            print(
                f"{name}: {cpu:.3f} CPU s/step without profiler; GEMM work {work:.1f} GFLOP -> "
                f"{work / cpu:.1f} GFLOP/s, against {speed:.1f} GFLOP/s for a plain 32-row GEMM now "
                f"(floor {work / speed:.2f} s)",
                flush=True,
            )
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                fn(index)
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows), flush=True)


if __name__ == "__main__":
    main()
