"""Export the written page through the engine's page writers: SVG, PNG, InkML and pen-plotter G-code.

The lines are laid out on the page setup's paper (``engine.handwriting.page.layout_pages``: real millimetres,
the chosen letter height and line spacing), so an export prints or plots at its true size. A page too long for
one sheet becomes ``name-1.svg``, ``name-2.svg``, ... as on the command line. Every writer is atomic.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.formats.gcode import write_gcode
from engine.formats.inkml import write_inkml
from engine.formats.png import write_page_png
from engine.formats.svg import write_page_svg
from engine.handwriting.page import Page, PageGeometry, layout_pages


@dataclass(frozen=True)
class ExportFormat:
    suffix: str
    label: str

    @property
    def filter(self) -> str:
        return f"{self.label} (*{self.suffix})"


FORMATS = (
    ExportFormat(".svg", "SVG image"),
    ExportFormat(".png", "PNG image"),
    ExportFormat(".inkml", "InkML ink"),
    ExportFormat(".gcode", "G-code for pen plotters"),
)
FILTERS = ";;".join(f.filter for f in FORMATS)


def format_for(path: Path, chosen_filter: str = "") -> Path:
    """The path with a known suffix: its own, else the one of the filter chosen in the dialog (SVG by default)."""
    if path.suffix.lower() in {f.suffix for f in FORMATS}:
        return path
    suffix = next((f.suffix for f in FORMATS if f.filter == chosen_filter), ".svg")
    return path.with_name(path.name + suffix)


def page_paths(path: Path, count: int) -> list[Path]:
    """One file per page: the path itself for one page, else NAME-1.ext, NAME-2.ext, ..."""
    if count == 1:
        return [path]
    return [path.with_name(f"{path.stem}-{i}{path.suffix}") for i in range(1, count + 1)]


DEFAULT_PEN_WIDTH = 0.4  # mm: the engine's page writers' default
DEFAULT_INK = "#1a1a40"


def export_pages(
    path: str | Path,
    lines: list[list[np.ndarray]],
    texts: list[str],
    geometry: PageGeometry,
    pen_width: float = DEFAULT_PEN_WIDTH,
    colour: str = DEFAULT_INK,
) -> tuple[list[Path], list[Page]]:
    """Lay the lines out on pages and write each one in the format of ``path``'s suffix; returns the files.

    ``pen_width`` (mm) and ``colour`` ("#rrggbb") style the SVG and PNG; InkML and G-code carry only the path.
    """
    path = Path(path)
    pages = layout_pages(lines, geometry, texts)
    targets = page_paths(path, len(pages))
    title = " / ".join(texts)
    suffix = path.suffix.lower()
    for page, target in zip(pages, targets, strict=True):
        if suffix == ".png":
            write_page_png(target, page, stroke_width=pen_width, colour=_rgb(colour))
        elif suffix == ".inkml":
            write_inkml(target, page, title=title)
        elif suffix == ".gcode":
            write_gcode(target, page, title=title)
        elif suffix == ".svg":
            write_page_svg(target, page, title=title, stroke_width=pen_width, colour=colour)
        else:
            raise ValueError(f"unknown export format {path.suffix!r}: use .svg, .png, .inkml or .gcode")
    return targets, pages


def _rgb(colour: str) -> tuple[int, int, int]:
    value = colour.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)
