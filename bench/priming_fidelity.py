"""Does priming make the model write like the person whose strokes it read? (Graves 2013, section 5.5)

For writers the model never saw (the first usable line of each of ``--writers`` testset_v forms: forms are
mostly by different writers), the line's strokes become a prime (engine.handwriting.styles, as a user's pen
input would). The model writes the same texts primed with it and unprimed (same seeds), and the style
measures of engine.handwriting.style_metrics (letter height, letter width, slant) of both outputs are
compared with the prime's. A writer counts for a measure when the primed output is closer to the prime
than the unprimed output is. Last line: ``closer=<lowest of the three fractions>``.

    python bench/priming_fidelity.py --data ../shared/data/iam-ondb --writers 30

``--units native`` keeps each writer's own size (the paper's setting) instead of the app's normalised letter
height; ``--target next-line`` has the model write the text of the same writer's next line and compares with
that line, so that both sides write the same letters; ``--skip-writers 30`` takes the next writers instead (a
choice made by the first 30 is checked on others). Besides the counts it prints, per measure, how well the
output follows the prime across writers (correlation and slope) and its typical offset.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from engine.handwriting.style_metrics import StyleMetrics, flip_y, letter_height  # noqa: E402
from engine.handwriting.styles import IAM_LETTER_HEIGHT, iam_pen_lines, prime_from_strokes  # noqa: E402
from engine.handwriting.writer import HandwritingWriter, Prime, offsets_to_strokes  # noqa: E402

TEXTS = ["a quick brown fox jumps over the lazy dog", "Penwright writes by hand"]
MEASURES = ("height", "width", "slant")


def measure_lines(lines) -> StyleMetrics:
    """Mean measures over written lines."""
    ms = [StyleMetrics.measure(flip_y(line.strokes), line.text) for line in lines]
    return StyleMetrics(*(float(np.mean([getattr(m, f) for m in ms])) for f in ("height", "slant", "width")))


def distance(a: StyleMetrics, b: StyleMetrics, measure: str) -> float:
    """Relative difference for sizes (a log ratio: 2x and 0.5x are as far), degrees for slant."""
    if measure == "slant":
        return abs(a.slant - b.slant)
    return abs(np.log(getattr(a, measure) / getattr(b, measure)))


def scaled(offsets: np.ndarray, factor: float) -> np.ndarray:
    return np.concatenate([offsets[:, :2] * factor, offsets[:, 2:]], axis=1)


def measure_offsets(offsets: np.ndarray, text: str) -> StyleMetrics:
    return StyleMetrics.measure(flip_y(offsets_to_strokes(offsets, pen_down_at_start=False)), text)


def writer_lines(data: str, writers: int, target: str, writer: HandwritingWriter, skip: int = 0):
    """(line id, text, strokes, next line's (text, strokes) or None) for ``writers`` testset_v forms, after the
    first ``skip`` (another set of writers: a check that a choice made on the first ones holds)."""
    if target == "prime":
        lines = iam_pen_lines(data, "testset_v", skip + writers, one_per_form=True)[skip:]
        return [(*line, None) for line in lines]
    if target == "prime-text":  # the prime's own line is the target: the model writes its text again
        lines = iam_pen_lines(data, "testset_v", 10**6, one_per_form=True)
        usable = [line for line in lines if not writer.alphabet.unknown(line[1])][skip : skip + writers]
        return [(line_id, text, strokes, (text, strokes)) for line_id, text, strokes in usable]
    forms: dict[str, list] = {}
    for line_id, text, strokes in iam_pen_lines(data, "testset_v", 10**6):
        if not writer.alphabet.unknown(text):
            forms.setdefault(line_id.rsplit("-", 1)[0], []).append((line_id, text, strokes))
    chosen = [lines[:2] for lines in forms.values() if len(lines) >= 2][skip : skip + writers]
    return [(a[0], a[1], a[2], (b[1], b[2])) for a, b in chosen]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(REPO / "resources" / "models" / "handwriting-synthesis.npz"))
    parser.add_argument(
        "--data", default=os.environ.get("PENWRIGHT_IAM_ONDB", str(REPO.parent / "shared" / "data" / "iam-ondb"))
    )
    parser.add_argument("--writers", type=int, default=30)
    parser.add_argument("--skip-writers", type=int, default=0, help="start after this many writers (another set)")
    parser.add_argument("--bias", type=float, default=0.75)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2, help="write each text this many times (one batch)")
    parser.add_argument("--backend", default="auto")
    parser.add_argument(
        "--target",
        choices=["prime", "prime-text", "next-line"],
        default="prime",
        help="prime: the model writes fixed sentences and is compared with the prime line's measures; next-line: "
        "it writes the text of the same writer's next line and is compared with that line's measures (the same "
        "text on both sides, so what letters a text holds does not count as style); prime-text: it writes the "
        "prime's own text and is compared with the prime (the same letters, and no line-to-line variation of the "
        "writer)",
    )
    parser.add_argument(
        "--units",
        choices=["app", "native"],
        default="app",
        help="app: the prime is scaled to IAM-OnDB's median letter height, as the app does with any pen input "
        "(every prime then has the same height); native: it keeps the writer's own size in IAM-OnDB's sensor "
        "units, the units the model was trained in (the paper's setting)",
    )
    parser.add_argument(
        "--match-style",
        action="store_true",
        help="primed output with the style's letter height, width and slant matched (HandwritingWriter."
        "style_correction, measured on the prime's own text: --target prime or next-line write other texts)",
    )
    args = parser.parse_args(argv)

    writer = HandwritingWriter.load(args.model, backend=args.backend)
    started = time.monotonic()
    texts = TEXTS * args.repeats
    unprimed = measure_lines(writer.write(texts, args.bias, args.seed))
    closer = {m: 0 for m in MEASURES}
    rows = []
    owns: list[StyleMetrics] = []
    outs: list[StyleMetrics] = []
    for line_id, text, strokes, target in writer_lines(args.data, args.writers, args.target, writer, args.skip_writers):
        prime = prime_from_strokes(strokes, text, writer.convention, writer.alphabet)
        prime_height = letter_height([s[:, :2] for s in strokes])
        if args.units == "native":  # undo the app's size normalisation: the writer's own letter height
            prime = Prime(scaled(prime.offsets, prime_height / IAM_LETTER_HEIGHT), prime.text)
        if target is None:  # the prime's own measures, on the texts of TEXTS
            own = measure_offsets(prime.offsets, prime.text)
            lines_text = texts
            baseline = unprimed
        else:  # the same writer's next line (its text and strokes), in the prime's units
            target_text, target_strokes = target
            target_prime = prime_from_strokes(target_strokes, target_text, writer.convention, writer.alphabet)
            target_height = letter_height([s[:, :2] for s in target_strokes])
            factor = target_height / (IAM_LETTER_HEIGHT if args.units == "native" else prime_height)
            own = measure_offsets(scaled(target_prime.offsets, factor), target_prime.text)
            lines_text = [target_prime.text] * len(texts)
            baseline = measure_lines(writer.write(lines_text, args.bias, args.seed))
        primed = measure_lines(writer.write(lines_text, args.bias, args.seed, prime, match_style=args.match_style))
        owns.append(own)
        outs.append(primed)
        row = [line_id]
        for m in MEASURES:
            d_primed, d_unprimed = distance(primed, own, m), distance(baseline, own, m)
            closer[m] += d_primed < d_unprimed
            row.append(f"{d_primed:6.2f} vs {d_unprimed:6.2f}")
        rows.append(row)
        print(f"{line_id}: {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)

    n = len(rows)
    # Does the output follow the prime at all? Across writers: correlation and slope (log sizes, degrees).
    follow = []
    for m in MEASURES:
        own_v = np.array([getattr(o, m) for o in owns])
        out_v = np.array([getattr(p, m) for p in outs])
        if m != "slant":
            own_v, out_v = np.log(own_v), np.log(out_v)
        # the typical offset: output / prime for sizes, output - prime for slant
        offset = f"x{np.exp(np.median(out_v - own_v)):.2f}" if m != "slant" else f"{np.median(out_v - own_v):+.1f} deg"
        if np.ptp(own_v) > 1e-9 and n > 2:
            fit = f"r={np.corrcoef(own_v, out_v)[0, 1]:.2f} slope={np.polyfit(own_v, out_v, 1)[0]:.2f}"
            follow.append(f"{m} {fit} median {offset}")
        else:
            follow.append(f"{m}: the primes do not vary")
    print(
        f"model: {args.model}; bias {args.bias}; {len(texts)} lines per output; {n} testset_v writers (one form each); "
        f"prime units: {args.units}; compared with: {args.target}"
        + ("; height, width and slant matched (style_correction)" if args.match_style else "")
    )
    print("distance to the prime: primed vs unprimed output (height, width: |log ratio|; slant: degrees)")
    print(f"{'line':16s}" + "".join(f"{m:>22s}" for m in MEASURES))
    for row in rows:
        print(f"{row[0]:16s}" + "".join(f"{c:>22s}" for c in row[1:]))
    fractions = {m: closer[m] / max(n, 1) for m in MEASURES}
    print(
        "primed output closer to the prime than unprimed output: "
        + ", ".join(f"{m} {closer[m]}/{n} ({fractions[m]:.0%})" for m in MEASURES)
    )
    print("primed output against the prime, across writers: " + "; ".join(follow))
    medians = {m: float(np.median([getattr(o, m) for o in owns])) for m in MEASURES}
    print(
        "unprimed output: "
        + ", ".join(f"{m} {getattr(unprimed, m):.1f}" for m in MEASURES)
        + "; the primes' medians: "
        + ", ".join(f"{m} {v:.1f}" for m, v in medians.items())
    )
    print(f"measured in {time.monotonic() - started:.0f} s")
    print(f"closer={min(fractions.values()):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
