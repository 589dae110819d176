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
from engine.handwriting.writer import HandwritingWriter

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Pack my box with five dozen liquor jugs!",
    "Zoe mixed 17 jars of quince jam at 9:45, then left.",
    '"Why not?" asked the driver (quietly).',
    "Handwriting synthesis with recurrent networks",
]


def sample_sheet(
    writer: HandwritingWriter, sentences: list[str], biases: list[float], seeds: list[int], scale: float = 0.16
) -> tuple[Image.Image, dict]:
    """Rows of (bias, seed, sentence) images with a label; returns the sheet and stopping statistics."""
    rows: list[tuple[str, Image.Image]] = []
    stopped, total = 0, 0
    for bias in biases:
        for seed in seeds:
            lines = writer.write(sentences, bias=bias, seed=seed)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default="docs/samples.png")
    parser.add_argument("--model")
    parser.add_argument("--biases", type=float, nargs="+", default=[0.0, 0.5, 1.0, 2.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--sentences", nargs="+", default=SENTENCES)
    args = parser.parse_args(argv)
    writer = HandwritingWriter.load(args.model)
    sheet, stats = sample_sheet(writer, args.sentences, args.biases, args.seeds)
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG", optimize=True)
    atomic_write_bytes(Path(args.output), buffer.getvalue())
    print(f"wrote {args.output}: {stats['stopped_by_window']} of {stats['lines']} lines ended by the window")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
