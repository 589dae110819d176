"""A sample sheet: several sentences written at several biases and seeds, labelled, as one PNG.

python -m engine.handwriting.sample_sheet -o docs/samples.png [--model M] [--biases 0 0.5 1 2]
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from engine.atomic import atomic_write_bytes
from engine.formats.png import render_lines
from engine.handwriting.writer import HandwritingWriter, Prime

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Pack my box with five dozen liquor jugs!",
    "Zoe mixed 17 jars of quince jam at 9:45, then left.",
    '"Why not?" asked the driver (quietly).',
    "Handwriting synthesis with recurrent networks",
]


def sample_sheet(
    writer: HandwritingWriter,
    sentences: list[str],
    biases: list[float],
    seeds: list[int],
    scale: float = 0.16,
    prime: Prime | None = None,
    match_style: bool = False,
) -> tuple[Image.Image, dict]:
    """Rows of (bias, seed, sentence) images with a label; returns the sheet and stopping statistics.
    ``prime``: write primed with a style, as the app does (its presets prime every line); ``match_style``: with
    the style's size, width and slant matched, as the app does by default."""
    rows: list[tuple[str, Image.Image]] = []
    stopped, total = 0, 0
    for bias in biases:
        for seed in seeds:
            lines = writer.write(sentences, bias=bias, seed=seed, prime=prime, match_style=match_style)
            stopped += sum(line.stopped_by_window for line in lines)
            total += len(lines)
            for line in lines:
                label = f"bias {bias:g}, seed {seed}" + ("" if line.stopped_by_window else "  (length cap)")
                rows.append((label, render_lines([line.strokes], scale=scale, stroke_width=2.0, margin=30)))
    font = ImageFont.load_default()
    label_h = 14
    width = max(img.width for _, img in rows) + 20
    height = sum(img.height + label_h + 6 for _, img in rows) + 10
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    y = 5
    for label, img in rows:
        draw.text((10, y), label, fill=(120, 120, 120), font=font)
        sheet.paste(img, (10, y + label_h))
        y += img.height + label_h + 6
    return sheet, {"stopped_by_window": stopped, "lines": total}


def prediction_sheet(
    model_path: str | Path | None, seeds: list[int], steps: int = 500, bias: float = 0.5
) -> Image.Image:
    """Unconditional samples of the prediction network (paper, section 4): handwriting-like strokes, no text."""
    import numpy as np

    from engine.handwriting.checkpoint import load_model_file
    from engine.handwriting.preprocessing import Normalizer
    from engine.handwriting.sampling import generate
    from engine.handwriting.writer import make_stepper, offsets_to_strokes, shipped_model_path

    path = Path(model_path) if model_path else shipped_model_path("prediction")
    model = load_model_file(path)
    stepper = make_stepper(model, "auto", "cpu", path)
    normalizer = Normalizer.from_dict(model.meta["normalizer"])
    images = []
    for seed in seeds:
        # The prediction network reads no text; the dummy characters only set the length cap.
        result = generate(
            stepper,
            [np.zeros(60, np.int64)],
            normalizer,
            model.meta["config"]["chars_per_step"],
            bias,
            np.random.default_rng(seed),
            max_steps=steps,
        )
        images.append(render_lines([offsets_to_strokes(result.offsets[0])], scale=0.16, stroke_width=2.0))
    sheet = Image.new("RGB", (max(i.width for i in images) + 20, sum(i.height for i in images) + 20), "white")
    y = 10
    for image in images:
        sheet.paste(image, (10, y))
        y += image.height
    return sheet


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default="docs/samples.png")
    parser.add_argument("--model")
    parser.add_argument("--biases", type=float, nargs="+", default=[0.0, 0.5, 1.0, 2.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--sentences", nargs="+", default=SENTENCES)
    parser.add_argument("--prediction", action="store_true", help="unconditional samples of the prediction network")
    parser.add_argument(
        "--style", help="prime with a style, as the app writes: a preset's name (e.g. 'Penwright neat') or a style file"
    )
    parser.add_argument(
        "--match-style", action="store_true", help="with --style: its size, width and slant matched (as the app does)"
    )
    args = parser.parse_args(argv)
    if args.prediction:
        buffer = io.BytesIO()
        prediction_sheet(args.model, args.seeds).save(buffer, format="PNG", optimize=True)
        atomic_write_bytes(Path(args.output), buffer.getvalue())
        print(f"wrote {args.output}")
        return 0
    writer = HandwritingWriter.load(args.model)
    prime = None
    if args.style:
        from engine.handwriting.styles import load_style_or_preset

        prime = load_style_or_preset(args.style).prime(writer.convention, writer.alphabet)
    sheet, stats = sample_sheet(
        writer, args.sentences, args.biases, args.seeds, prime=prime, match_style=args.match_style
    )
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG", optimize=True)
    atomic_write_bytes(Path(args.output), buffer.getvalue())
    print(f"wrote {args.output}: {stats['stopped_by_window']} of {stats['lines']} lines ended by the window")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
