"""How often the synthesis network finishes a line by itself: the share of samples that end by the
window's stopping rule rather than the length cap (a model that has not learned to read its text runs
on to the cap). Sentences are testset_v transcriptions (varied, never seen in training); ``--pangrams``
writes pangrams instead (every letter, z, q, j and x included: the rare characters a network stalls on,
scribbling for many steps; the steps per character show it). Stalls are counted too: runs of at least
``STALL_RUN`` pen-down steps each shorter than ``sampling.STILL_SHARE`` of the training data's step spread (the pen
all but standing still; the writer draws such a pen without bias after ``writer.STALL_STEPS`` steps). Lost
stretches too: lines whose window rests on one character for ``LOST_DWELL`` steps or more (the pen scribbles, dots
and wanders where a letter or two should be; the writer draws such a stretch again, ``writer.LOST_CHARACTERS``;
``--without-lost-rule`` shows how the lines come out without that).

    python bench/legibility.py --data ../shared/data/iam-ondb [--model M] [--samples 200] [--bias 1] [--style NAME]
    python bench/legibility.py --pangrams [--samples 200] [--without-lost-rule]

Last line: ``stopped_by_window=<fraction> samples=<int> bias=<float>``.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from pangrams import PANGRAMS  # bench/ is the script's folder, first on sys.path

from engine.handwriting import writer as writer_module
from engine.handwriting.dataset import load_lines, resolve_data_folder
from engine.handwriting.iam_ondb import read_split_file, split_of
from engine.handwriting.sampling import STILL_SHARE
from engine.handwriting.writer import HandwritingWriter

STALL_RUN = 16  # steps: twice the writer's STALL_STEPS, so a stall the writer breaks at once is not counted
# steps: about 4.5 characters' worth at the training data's pace; a letter takes 10-35 (session 14, 300 pangram
# lines at bias 1 without the rule: the eight longest of the 17 such stretches all had scribbles where letters should
# be; of eight at 36-48 steps, about half did)
LOST_DWELL = 50


def longest_dwell(window: np.ndarray, text_length: int) -> int:
    """The most steps the window's focus (its largest weight) rested on one character of the line's own text
    (``window``: per step, the weights on the prime's characters, the line's and the position past them)."""
    start = window.shape[1] - 1 - text_length  # the line's first character (after the prime's, if any)
    focus = window.argmax(axis=1) - start
    inside = focus[(focus >= 0) & (focus < text_length)]
    return int(np.bincount(inside, minlength=1).max())


def stalled_steps(offsets: np.ndarray, limit: float) -> int:
    """Steps in runs of at least STALL_RUN pen-down steps shorter than ``limit`` (sensor units)."""
    still = (np.hypot(offsets[:, 0], offsets[:, 1]) < limit) & (offsets[:, 2] < 0.5)
    total = run = 0
    for s in still:
        run = run + 1 if s else 0
        total += STALL_RUN if run == STALL_RUN else int(run > STALL_RUN)
    return total


def validation_sentences(data: str | None, alphabet, count: int) -> list[str]:
    folder = resolve_data_folder(data)
    forms = read_split_file(folder / "testset_v.txt")
    lines, _ = load_lines(folder)
    texts = sorted({ln.text for ln in lines if split_of(ln.form_id, {"v": forms})})
    usable = [t for t in texts if not alphabet.unknown(t)]
    rng = np.random.default_rng(0)
    return [usable[i] for i in rng.choice(len(usable), size=min(count, len(usable)), replace=False)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data")
    parser.add_argument("--model")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--bias", type=float, default=1.0)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--style", help="prime with a preset (e.g. 'Penwright neat') or a style file, as the app does")
    parser.add_argument("--pangrams", action="store_true", help="write pangrams (rare letters) instead of testset_v")
    parser.add_argument(
        "--one-hand",
        action="store_true",
        help="without --style: write each batch as the app writes a page without a style, in one hand the network "
        "invents for the batch's seed (default: every line an independent unprimed sample)",
    )
    parser.add_argument(
        "--without-lost-rule", action="store_true", help="do not draw lost stretches again (writer.LOST_CHARACTERS)"
    )
    args = parser.parse_args(argv)
    if args.without_lost_rule:
        writer_module.LOST_CHARACTERS = 0.0
    writer = HandwritingWriter.load(args.model, backend=args.backend)
    prime = None
    if args.style:
        from engine.handwriting.styles import load_style_or_preset

        prime = load_style_or_preset(args.style).prime(writer.convention, writer.alphabet)
    if args.pangrams:
        sentences = [PANGRAMS[i % len(PANGRAMS)] for i in range(args.samples)]
    else:
        sentences = validation_sentences(args.data, writer.alphabet, args.samples)
    stopped, lengths, stalls, dwells = [], [], [], []
    limit = STILL_SHARE * float(np.mean(writer.normalizer.std))
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(0, len(sentences), args.batch):
            batch = sentences[i : i + args.batch]
            lines = writer.write(batch, bias=args.bias, seed=i, prime=prime, one_hand=args.one_hand, record=True)
            dwells += [longest_dwell(line.window, len(line.text)) for line in lines]
            stopped += [line.stopped_by_window for line in lines]
            lengths += [len(line.offsets) / max(len(line.text), 1) for line in lines]
            stalls += [(stalled_steps(line.offsets, limit), len(line.offsets)) for line in lines]
    seconds = time.perf_counter() - start
    print(
        f"{len(stopped)} samples in {seconds:.0f} s ({writer.backend_description}); "
        f"steps per character: median {np.median(lengths):.1f}, p95 {np.percentile(lengths, 95):.1f}"
    )
    stalled = [n for n, _ in stalls if n]
    print(
        f"stalls (pen all but still for {STALL_RUN}+ steps): {len(stalled)} lines, "
        f"{sum(stalled) / max(sum(t for _, t in stalls), 1):.1%} of all steps, "
        f"most in one line {max(stalled, default=0)}"
    )
    lost = sum(d >= LOST_DWELL for d in dwells)
    print(
        f"lost stretches (window on one character for {LOST_DWELL}+ steps): {lost} lines ({lost / len(dwells):.1%}); "
        f"longest per line: median {np.median(dwells):.0f}, p95 {np.percentile(dwells, 95):.0f}, max {max(dwells)}"
        + (" (without the lost rule)" if args.without_lost_rule else "")
    )
    primed = (f" style={args.style!r}" if args.style else "") + (" texts=pangrams" if args.pangrams else "")
    print(f"stopped_by_window={np.mean(stopped):.3f} samples={len(stopped)} bias={args.bias:g}{primed}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
