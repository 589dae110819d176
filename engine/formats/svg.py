"""SVG output: handwritten lines as smooth-free polylines, one <path> per stroke, stacked as a page."""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

from engine.atomic import atomic_write_text


def layout_lines(lines: list[list[np.ndarray]], line_spacing: float) -> list[list[np.ndarray]]:
    """Move each line (strokes in y-up units) so its left edge is at x=0 and lines stack downward (y down)."""
    placed = []
    for i, strokes in enumerate(lines):
        if not strokes:
            placed.append([])
            continue
        xy = np.concatenate(strokes)
        x0 = xy[:, 0].min()
        baseline = np.median(xy[:, 1])
        placed.append([np.column_stack([s[:, 0] - x0, -(s[:, 1] - baseline) + i * line_spacing]) for s in strokes])
    return placed


def svg_document(
    lines: list[list[np.ndarray]],
    stroke_width: float = 3.0,
    colour: str = "#1a1a40",
    scale: float = 0.25,
    margin: float = 40.0,
    line_spacing: float | None = None,
    title: str = "",
) -> str:
    """An SVG string for lines of strokes (each stroke (n, 2) in sensor units, y up)."""
    if line_spacing is None:
        heights = [np.ptp(np.concatenate(st)[:, 1]) for st in lines if st]
        line_spacing = 1.3 * (max(heights) if heights else 100.0)
    placed = layout_lines(lines, line_spacing)
    flat = [s for strokes in placed for s in strokes]
    if flat:
        xy = np.concatenate(flat)
        lo, hi = xy.min(0) - margin, xy.max(0) + margin
    else:
        lo, hi = np.zeros(2), np.array([100.0, 100.0])
    width, height = hi - lo
    paths = []
    for stroke in flat:
        d = "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in stroke)
        paths.append(f'<path d="{d}"/>')
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width * scale:.0f}" height="{height * scale:.0f}" '
        f'viewBox="{lo[0]:.1f} {lo[1]:.1f} {width:.1f} {height:.1f}">\n'
        f"<title>{escape(title)}</title>\n"
        f'<rect x="{lo[0]:.1f}" y="{lo[1]:.1f}" width="{width:.1f}" height="{height:.1f}" fill="white"/>\n'
        f'<g fill="none" stroke="{escape(colour)}" stroke-width="{stroke_width / scale:.1f}" '
        'stroke-linecap="round" stroke-linejoin="round">\n' + "\n".join(paths) + "\n</g>\n</svg>\n"
    )


def write_svg(path: str | Path, lines: list[list[np.ndarray]], **kwargs) -> None:
    atomic_write_text(path, svg_document(lines, **kwargs))


def page_svg_document(page, stroke_width: float = 0.4, colour: str = "#1a1a40", title: str = "") -> str:
    """An SVG string for a :class:`~engine.handwriting.page.Page`: width and height in mm, viewBox in mm (one
    user unit = 1 mm), one <path> per stroke; ``stroke_width`` in mm. The paths sit in a group scaled by 0.1:
    their coordinates are tenths of a millimetre written with one decimal (0.01 mm precision, compact)."""
    paths = []
    for stroke in page.strokes:
        if len(stroke) == 0:
            continue
        d = "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in np.asarray(stroke) * 10.0)
        paths.append(f'<path d="{d}"/>')
    w, h = page.width, page.height
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w:g}mm" height="{h:g}mm" viewBox="0 0 {w:g} {h:g}">\n'
        f"<title>{escape(title)}</title>\n"
        f'<rect x="0" y="0" width="{w:g}" height="{h:g}" fill="white"/>\n'
        f'<g transform="scale(0.1)" fill="none" stroke="{escape(colour)}" stroke-width="{stroke_width * 10:g}" '
        'stroke-linecap="round" stroke-linejoin="round">\n' + "\n".join(paths) + "\n</g>\n</svg>\n"
    )


def write_page_svg(path: str | Path, page, **kwargs) -> None:
    """Write one page as SVG (see :func:`page_svg_document` for the options)."""
    atomic_write_text(path, page_svg_document(page, **kwargs))
