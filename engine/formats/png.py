"""PNG output with Pillow: handwritten lines drawn with round-capped strokes, antialiased by supersampling."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from engine.atomic import atomic_write_bytes
from engine.formats.svg import layout_lines


def render_lines(
    lines: list[list[np.ndarray]],
    scale: float = 0.25,
    stroke_width: float = 3.0,
    colour: tuple[int, int, int] = (26, 26, 64),
    margin: float = 40.0,
    line_spacing: float | None = None,
    supersample: int = 3,
) -> Image.Image:
    """An RGB image of lines of strokes (each stroke (n, 2) in sensor units, y up)."""
    if line_spacing is None:
        heights = [np.ptp(np.concatenate(st)[:, 1]) for st in lines if st]
        line_spacing = 1.3 * (max(heights) if heights else 100.0)
    flat = [s for strokes in layout_lines(lines, line_spacing) for s in strokes]
    if flat:
        xy = np.concatenate(flat)
        lo, hi = xy.min(0) - margin, xy.max(0) + margin
    else:
        lo, hi = np.zeros(2), np.array([400.0, 100.0])
    k = scale * supersample
    size = np.maximum(np.ceil((hi - lo) * k).astype(int), 1)
    image = Image.new("RGB", (int(size[0]), int(size[1])), "white")
    draw = ImageDraw.Draw(image)
    width = max(1, round(stroke_width * supersample))
    for stroke in flat:
        pts = [tuple(p) for p in ((stroke - lo) * k).tolist()]
        draw.line(pts, fill=colour, width=width, joint="curve")
        r = width / 2
        for x, y in (pts[0], pts[-1]):
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    if supersample > 1:
        image = image.resize((max(1, image.width // supersample), max(1, image.height // supersample)), Image.LANCZOS)
    return image


def write_png(path: str | Path, lines: list[list[np.ndarray]], **kwargs) -> None:
    buffer = io.BytesIO()
    render_lines(lines, **kwargs).save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())


def render_page(
    page,
    dpi: float = 150.0,
    stroke_width: float = 0.4,
    colour: tuple[int, int, int] = (26, 26, 64),
    supersample: int = 2,
) -> Image.Image:
    """An RGB image of a :class:`~engine.handwriting.page.Page` at ``dpi``: round(mm / 25.4 * dpi) pixels each
    way; ``stroke_width`` in mm."""
    if not dpi > 0:
        raise ValueError(f"the resolution must be positive, not {dpi} dpi")
    px_per_mm = dpi / 25.4
    size = (max(1, round(page.width * px_per_mm)), max(1, round(page.height * px_per_mm)))
    k = px_per_mm * supersample
    image = Image.new("RGB", (size[0] * supersample, size[1] * supersample), "white")
    draw = ImageDraw.Draw(image)
    width = max(1, round(stroke_width * k))
    r = width / 2
    for stroke in page.strokes:
        if len(stroke) == 0:
            continue
        pts = [tuple(p) for p in (np.asarray(stroke) * k).tolist()]
        if len(pts) > 1:
            draw.line(pts, fill=colour, width=width, joint="curve")
        for x, y in (pts[0], pts[-1]):
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    if supersample > 1:
        image = image.resize(size, Image.LANCZOS)
    return image


def write_page_png(path: str | Path, page, dpi: float = 150.0, **kwargs) -> None:
    """Write one page as PNG at ``dpi`` (recorded in the file, so it prints at its real size)."""
    buffer = io.BytesIO()
    render_page(page, dpi=dpi, **kwargs).save(buffer, format="PNG", dpi=(dpi, dpi))
    atomic_write_bytes(path, buffer.getvalue())
