"""How fast Penwright writes: ONNX Runtime against PyTorch eager, one thread, in one run (under 40 s).

    python bench/handwriting_speed.py                      # the shipped model (resources/models)
    python bench/handwriting_speed.py --model runs/synthesis-skip2/best.npz
    python bench/handwriting_speed.py --backend torch --device cuda   # pages etc. on a GPU (the ratio stays CPU)

The model is copied to a temporary folder and exported to ONNX there when it has no ``.onnx`` beside it
(exporting needs torch and takes a few seconds; it is not part of any figure). Measured, at one thread:

* per-step time of the network, torch vs ONNX (one stream, batch 1, the Stepper protocol, 300 steps);
* the writer's network step for the page's 10 lines at once against one line's (what batching saves in the
  network alone: on this 2-core VM's CPU a batch of 10 runs the layer products at the core's FMA peak, so it costs
  1.8-2.9 times one line's step, where one line only streams the weights; on the writer's backend and device);
* generated points per second for one stream with ONNX (``HandwritingWriter.write``, sampling included);
* a page of 10 lines written as one batch vs the same 10 lines one by one (throughput ratio, points/s);
  finished lines leave the batch, so a page costs what its lines do, but a batch takes as long as its
  longest line, so the ratio varies from page to page: it is measured over ``--pages`` pages (seeds),
  without a style (as the app writes such a page: in one hand the network invents for the seed, the time to
  invent it included) and primed with the app's default style (the preset "Penwright neat");
  ``--independent-lines`` adds pages whose lines are independent unprimed samples (a new writer per line);
  each page is timed once between the first and the second half of its lines one by one, so the machine's slow
  spells (this VM's one-stream rate moves by a third between runs) fall on both sides of the ratio;
* (the one-stream figure is the fastest of ``--repeats`` identical runs);
* time to the first streamed chunk with points (chunks of 16 steps; a line's last characters wait until its window
  moves on) with a warm engine and a cached primed style (matched, as the app writes by default; the style's
  correction is kept in the cache folder as the app keeps it, so only a first run measures it, about 2 s outside
  every figure);
* engine start time: a fresh process importing the engine and loading the model with the ONNX backend.

Prints a table with the targets, then ``ratio=X`` last: X is ONNX's speed-up per step over PyTorch eager.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from pangrams import PANGRAMS  # noqa: E402 - bench/ is the script's folder, first on sys.path

SHIPPED = REPO / "resources" / "models" / "handwriting-synthesis.npz"
LINE, PAGE = PANGRAMS[0], PANGRAMS[1:11]  # one line; a page of ten
DEFAULT_STYLE = "preset:Penwright neat"  # the app's style on first start (desktop.handwriting_tab.DEFAULT_STYLE)
TARGETS = {"ratio": 1.5, "points": 1500.0, "batch": 4.0, "first_chunk_ms": 50.0, "start_s": 1.0}


def per_step_seconds(stepper, chars: np.ndarray, steps: int, repeats: int = 3, batch: int = 1) -> float:
    """Best of ``repeats`` mean step times over ``steps`` steps (after a few warm-up steps), ``batch`` lines."""
    best = float("inf")
    x = np.zeros((batch, 3), np.float32)
    for _ in range(repeats):
        state = stepper.start(np.repeat(chars[None], batch, axis=0))
        for _ in range(5):
            _, _, state = stepper.step(x, state)
        t0 = time.perf_counter()
        for _ in range(steps):
            _, _, state = stepper.step(x, state)
        best = min(best, (time.perf_counter() - t0) / steps)
    return best


def best_of(repeats: int, run):
    """(result, fastest wall time) of ``repeats`` calls of ``run``."""
    best, result = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - t0)
    return result, best


def points_of(lines) -> int:
    return sum(len(line.offsets) for line in lines)


def page_rates(writer, pages: int, prime=None, one_hand: bool = True) -> tuple[float, float, float, list[float]]:
    """(points/s writing PAGE as one batch, points/s writing the same lines one by one, the longest line's share
    of a page's time: mean / longest line length, averaged over the pages, each page's own ratio), over ``pages``
    seeds.

    Each seed's page is timed once, between the first five of its lines one by one and the last five, so that a
    slow spell on a busy machine falls on both sides of the ratio rather than on one. Without a ``prime`` the lines
    are written as the app writes a page without a style: in one hand the network invents for the seed
    (``one_hand``; inventing it is timed on both sides: once with the page, once before the lines one by one), or
    with ``one_hand=False`` as independent unprimed samples."""
    if prime is not None:
        writer.primed_state(prime)  # cached, as the app's engine has it before a page starts
    batch_points = single_points = 0
    batch_s = single_s = 0.0
    fill, ratios = [], []
    half = len(PAGE) // 2

    def one_by_one(seed: int, lines: range) -> tuple[list, float]:
        """(PAGE's ``lines`` written one by one in the page's hand, seconds; the hand invented unless remembered)."""
        t0 = time.perf_counter()
        hand = writer.page_prime(PAGE, prime, one_hand, seed, 1.0)
        written = [line for i in lines for line in writer.write([PAGE[i]], 1.0, 100 * seed + i, hand)]
        return written, time.perf_counter() - t0

    for seed in range(2, 2 + pages):
        # the lines one by one, the first half before the page and the second after it: a slow spell of the
        # machine that lasts a few seconds falls on both sides alike (the host's load moves the one-line rate by
        # a third between runs, and a page takes a fifth of the time of its lines one by one)
        writer.forget_hands()
        singles, lines_s = one_by_one(seed, range(half))

        writer.forget_hands()  # a first page at this seed: inventing its hand is timed
        t0 = time.perf_counter()
        lines = writer.write(PAGE, bias=1.0, seed=seed, prime=prime, one_hand=one_hand)
        page_s = time.perf_counter() - t0
        batch_s += page_s
        batch_points += points_of(lines)
        lengths = [len(line.offsets) for line in lines]
        fill.append(np.mean(lengths) / max(lengths))

        rest, rest_s = one_by_one(seed, range(half, len(PAGE)))  # the hand remembered: the page invented it
        singles, lines_s = singles + rest, lines_s + rest_s
        single_s += lines_s
        single_points += points_of(singles)
        ratios.append((points_of(lines) / page_s) / (points_of(singles) / lines_s))
    return batch_points / batch_s, single_points / single_s, float(np.mean(fill)), ratios


def start_time(model: Path) -> tuple[float, float]:
    """(import + load seconds inside a fresh process, the whole process's wall seconds)."""
    code = (
        "import time; t = time.perf_counter()\n"
        "from engine.handwriting.writer import HandwritingWriter\n"
        f"HandwritingWriter.load({str(model)!r}, backend='onnx')\n"
        "print(time.perf_counter() - t)\n"
    )
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1]), time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help=f"synthesis model file (default {SHIPPED.relative_to(REPO)})")
    parser.add_argument("--steps", type=int, default=300, help="steps per per-step measurement")
    parser.add_argument("--repeats", type=int, default=3, help="runs per writing measurement (the fastest counts)")
    parser.add_argument("--pages", type=int, default=4, help="pages (seeds) the batch ratio is measured over")
    parser.add_argument(
        "--backend", choices=("onnx", "torch"), default="onnx", help="the writer's backend (pages, one stream)"
    )
    parser.add_argument(
        "--device",
        default="cpu",
        help="the writer's device (pages, one stream, the batch-step row): cpu, cuda, cuda:N, mps; the per-step "
        "ratio stays CPU",
    )
    parser.add_argument(
        "--independent-lines",
        action="store_true",
        help="also measure pages of independent unprimed lines (every line a new random writer; about 10 s more)",
    )
    args = parser.parse_args(argv)
    source = Path(args.model) if args.model else SHIPPED
    if not source.exists():
        parser.error(f"no model at {source}: give --model PATH")

    from engine.backends.onnx_backend import OnnxStepper
    from engine.backends.torch_backend import TorchStepper
    from engine.handwriting.checkpoint import load_model_file
    from engine.handwriting.styles import load_style_or_preset
    from engine.handwriting.writer import HandwritingWriter, Prime

    with tempfile.TemporaryDirectory(prefix="penwright-bench-") as tmp:
        model_path = Path(tmp) / "synthesis.npz"
        shutil.copyfile(source, model_path)
        if source.with_suffix(".onnx").exists() and source.with_suffix(".onnx.json").exists():
            shutil.copyfile(source.with_suffix(".onnx"), model_path.with_suffix(".onnx"))
            shutil.copyfile(source.with_suffix(".onnx.json"), model_path.with_suffix(".onnx.json"))
            exported = "its own .onnx"
        else:
            from engine.backends.onnx_export import export_onnx

            t0 = time.perf_counter()
            export_onnx(model_path)
            exported = f"exported to ONNX here in {time.perf_counter() - t0:.1f} s (not in any figure)"
        bench_start = time.perf_counter()
        model = load_model_file(model_path)
        writer = HandwritingWriter.load(model_path, backend=args.backend, device=args.device, keep_corrections=True)
        for notice in writer.notices:
            print(f"notice: {notice}")
        chars = writer.alphabet.encode(writer.prepare([LINE])[0][0])

        torch_step = per_step_seconds(TorchStepper(model, "cpu", threads=1), chars, args.steps)
        onnx_step = per_step_seconds(OnnxStepper(model_path.with_suffix(".onnx"), model, "cpu"), chars, args.steps)

        writer.write(["warm up"], bias=1.0, seed=0)
        line_step = per_step_seconds(writer.stepper, chars, 200, repeats=2)
        page_step = per_step_seconds(writer.stepper, chars, 200, repeats=2, batch=len(PAGE))
        # Each timing is the best of `--repeats` (the same seeds, so the same strokes): other processes on a
        # busy machine only ever slow a run down.
        single, single_s = best_of(args.repeats, lambda: writer.write([LINE], bias=1.0, seed=1))
        points_per_s = points_of(single) / single_s

        batch_rate, one_rate, fill, page_ratios = page_rates(writer, args.pages)
        if args.independent_lines:
            independent = page_rates(writer, args.pages, one_hand=False)
        style = load_style_or_preset(DEFAULT_STYLE).prime(writer.convention, writer.alphabet)
        styled_rate, styled_one_rate, styled_fill, styled_ratios = page_rates(writer, args.pages, style)

        # a primed style: the model's own line as the prime, its state (and, as the app writes by default, its
        # size, width and slant correction) cached by the warm writer
        prime = Prime(single[0].offsets, single[0].text)
        writer.primed_state(prime)
        writer.style_correction(prime, 1.0)
        next(writer.stream(["warm up"], bias=1.0, seed=0, prime=prime, match_style=True))
        firsts = []
        for i in range(5):
            t0 = time.perf_counter()
            chunks = writer.stream([LINE], bias=1.0, seed=i, prime=prime, chunk_steps=16, match_style=True)
            # the first chunk with points to draw (a line's last characters' points wait until its window moves on)
            next(chunk for chunk in chunks if len(chunk.offsets[0]))
            firsts.append(time.perf_counter() - t0)
            chunks.close()
        first_chunk = float(np.median(firsts))
        measured_s = time.perf_counter() - bench_start
        load_s, process_s = start_time(model_path)

    ratio = torch_step / onnx_step
    cfg = model.meta["config"]
    print(f"model: {source} ({cfg['layers']}x{cfg['hidden']} LSTM, {model.meta['convention']})")
    threads = "one CPU thread" if args.device == "cpu" else f"device {args.device!r}"
    print(f"engine (pages, one stream): {writer.backend_description}; {threads}; {exported}")
    print("per-step ratio: PyTorch eager and ONNX Runtime on the CPU, one thread")
    rows = [
        ("per step, PyTorch eager (batch 1)", f"{torch_step * 1e3:.3f} ms", ""),
        ("per step, ONNX Runtime (batch 1)", f"{onnx_step * 1e3:.3f} ms", ""),
        ("ONNX speed-up per step", f"{ratio:.2f}x", f">= {TARGETS['ratio']}x", ratio >= TARGETS["ratio"]),
        (
            "points/s, one stream",
            f"{points_per_s:,.0f} ({points_of(single)} pts in {single_s:.2f} s)",
            f">= {TARGETS['points']:,.0f}",
            points_per_s >= TARGETS["points"],
        ),
        (
            "network step: 10 lines, one line (writer)",
            f"{page_step * 1e3:.3f}, {line_step * 1e3:.3f} ms: {len(PAGE) * line_step / page_step:.2f}x per step",
            "",
        ),
        (f"no style: points/s, {args.pages} pages of 10 as batches", f"{batch_rate:,.0f} (mean/long {fill:.2f})", ""),
        ("no style: points/s, the 10 lines one by one", f"{one_rate:,.0f}", ""),
        (
            "no style: batch-of-10 / one by one",
            f"{batch_rate / one_rate:.2f}x (pages {', '.join(f'{r:.1f}' for r in page_ratios)})",
            f">= {TARGETS['batch']}x",
            batch_rate / one_rate >= TARGETS["batch"],
        ),
        (
            "primed: points/s as batches, one by one",
            f"{styled_rate:,.0f}, {styled_one_rate:,.0f} ({styled_fill:.2f})",
            "",
        ),
        (
            "primed batch-of-10 / one by one",
            f"{styled_rate / styled_one_rate:.2f}x (pages {', '.join(f'{r:.1f}' for r in styled_ratios)})",
            f">= {TARGETS['batch']}x",
            styled_rate / styled_one_rate >= TARGETS["batch"],
        ),
        (
            "first streamed chunk (warm, primed)",
            f"{first_chunk * 1e3:.1f} ms",
            f"< {TARGETS['first_chunk_ms']:.0f} ms",
            first_chunk * 1e3 < TARGETS["first_chunk_ms"],
        ),
        (
            "engine start (import + load, ONNX)",
            f"{load_s:.2f} s (process {process_s:.2f} s)",
            f"< {TARGETS['start_s']:.0f} s",
            load_s < TARGETS["start_s"],
        ),
    ]
    if args.independent_lines:
        rate, one, share, _ = independent
        rows[8:8] = [
            ("independent lines: batches, one by one", f"{rate:,.0f}, {one:,.0f} ({share:.2f})", ""),
            ("independent lines: batch / one by one", f"{rate / one:.2f}x", ""),
        ]
    for row in rows:
        name, value, target = row[:3]
        verdict = ("met" if row[3] else "MISSED") if len(row) > 3 else ""
        print(f"{name:42s} {value:34s} {target:10s} {verdict}")
    print(f"measured in {measured_s:.1f} s")
    print(f"ratio={ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
