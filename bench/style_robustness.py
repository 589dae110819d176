"""How much does the device that recorded a style change what the model writes in that style?

For IAM-OnDB validation lines (testset_v) taken as a user's pen input, we make what other devices would have
recorded of the same motion (60 Hz and 200 Hz sampling, other units: scaled by 0.037 and by 3.5), turn each
into a prime (engine.handwriting.styles) and write the same texts primed with it, with the same seed. The
style measures (engine.handwriting.style_metrics) of the prime and of the written lines are compared with
those from the original recording: height and width in percent, slant in degrees. The "orig, seed+1" row is
the noise floor: the original prime written with another seed; "other writer" compares consecutive lines (the
first line of each form: mostly different writers), the size of a real change of style. Each text is written
``--repeats`` times in one batch and the measures averaged.

    python bench/style_robustness.py --model /tmp/best.npz --data ../shared/data/iam-ondb --lines 8
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from engine.handwriting.style_metrics import StyleMetrics, flip_y
from engine.handwriting.styles import iam_pen_lines, prime_from_strokes, resample_in_time
from engine.handwriting.writer import HandwritingWriter, offsets_to_strokes

TEXTS = ["a quick brown fox jumps over the lazy dog", "Penwright writes by hand"]


def variants(strokes):
    def scaled(factor):
        return [np.column_stack([s[:, :2] * factor + 300.0, s[:, 2:]]) for s in strokes]

    return {
        "60 Hz": resample_in_time(strokes, 60),
        "200 Hz": resample_in_time(strokes, 200),
        "x0.037": scaled(0.037),
        "x3.5": scaled(3.5),
    }


def measure_lines(lines) -> StyleMetrics:
    """Mean measures over the written lines."""
    ms = [StyleMetrics.measure(flip_y(line.strokes), line.text) for line in lines]
    return StyleMetrics(*(float(np.mean([getattr(m, f) for m in ms])) for f in ("height", "slant", "width")))


def prime_metrics(prime) -> StyleMetrics:
    return StyleMetrics.measure(flip_y(offsets_to_strokes(prime.offsets, pen_down_at_start=False)), prime.text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="/tmp/best.npz")
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "iam-ondb"))
    parser.add_argument("--lines", type=int, default=8)
    parser.add_argument("--bias", type=float, default=0.75)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=4, help="write each text this many times (one batch)")
    parser.add_argument(
        "--match-style", action="store_true", help="the style's size, width and slant matched (as the app does)"
    )
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    writer = HandwritingWriter.load(args.model, backend="torch")
    started = time.monotonic()
    rows: dict[str, dict[str, list[float]]] = {}

    def add(name: str, kind: str, diff: dict[str, float]) -> None:
        table = rows.setdefault(name, {})
        for key, value in diff.items():
            table.setdefault(f"{kind} {key}", []).append(value)

    texts = TEXTS * args.repeats
    previous = None
    for line_id, text, strokes in iam_pen_lines(args.data, "testset_v", args.lines, one_per_form=True):
        prime = prime_from_strokes(strokes, text, writer.convention, writer.alphabet)
        ref_prime = prime_metrics(prime)
        match = args.match_style
        ref_out = measure_lines(writer.write(texts, args.bias, args.seed, prime, match_style=match))
        noise = measure_lines(writer.write(texts, args.bias, args.seed + 1, prime, match_style=match))
        add("orig, seed+1", "out", noise.relative_to(ref_out))
        if previous is not None:
            add("other writer", "prime", ref_prime.relative_to(previous[0]))
            add("other writer", "out", ref_out.relative_to(previous[1]))
        previous = ref_prime, ref_out
        for name, pen in variants(strokes).items():
            other = prime_from_strokes(pen, text, writer.convention, writer.alphabet)
            add(name, "prime", prime_metrics(other).relative_to(ref_prime))
            written = writer.write(texts, args.bias, args.seed, other, match_style=match)
            add(name, "out", measure_lines(written).relative_to(ref_out))
        print(f"{line_id}: {len(prime.offsets)} prime steps, {time.monotonic() - started:.0f} s", flush=True)

    columns = [f"{k} {m}" for k in ("prime", "out") for m in ("height_pct", "width_pct", "slant_deg")]
    print(f"\nmean |difference| from the original recording over {args.lines} testset_v lines (signed mean)")
    print(f"outputs: {len(texts)} lines per prime (bias {args.bias}); prime: the normalised style itself")
    print(f"{'variant':14s}" + "".join(f"{c:>22s}" for c in columns))
    for name, table in rows.items():
        cells = []
        for c in columns:
            v = np.array(table.get(c, []))
            cells.append(f"{np.abs(v).mean():9.1f} ({v.mean():+6.1f})" if len(v) else "-")
        print(f"{name:14s}" + "".join(f"{c:>22s}" for c in cells))
    print(f"({time.monotonic() - started:.0f} s; height and width in %, slant in degrees; bias {args.bias})")


if __name__ == "__main__":
    main()
