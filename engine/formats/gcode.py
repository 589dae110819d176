"""G-code for pen plotters: a page's strokes as pen-down moves in millimetres.

The program sets millimetres (G21) and absolute positions (G90), lifts the pen, then for every stroke travels
to its first point with the pen up (G0), lowers the pen, draws through its points (G1 at the drawing feed) and
lifts the pen again; it ends with the pen up at the origin. How the pen goes up and down differs between
machines: :class:`PenCommands` holds the lines to send (a servo on the spindle output, ``M3 S90`` / ``M3 S0``,
by default; :meth:`PenCommands.z_axis` for a Z axis, ``G0 Z5`` / ``G1 Z0``) and an optional dwell after each.

Coordinates: origin "bottom-left" (the usual machine axes, Y up: Y = page height - y) or "top-left" (Y = y,
for machines whose Y axis runs down the page). Consecutive points that are the same at the written precision
(0.001 mm) are sent once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.atomic import atomic_write_text

ORIGINS = ("bottom-left", "top-left")


@dataclass(frozen=True)
class PenCommands:
    """G-code that lifts and lowers the pen (several lines separated by newlines; ';' starts a comment as usual)."""

    up: str = "M3 S90"
    down: str = "M3 S0"
    dwell: float = 0.0  # seconds to wait after the pen moves (G4 P...), 0 for none

    @classmethod
    def servo(cls, dwell: float = 0.0) -> PenCommands:
        return cls("M3 S90", "M3 S0", dwell)

    @classmethod
    def z_axis(cls, up: float = 5.0, down: float = 0.0, dwell: float = 0.0) -> PenCommands:
        return cls(f"G0 Z{up:g}", f"G1 Z{down:g}", dwell)

    def lines(self, which: str) -> list[str]:
        text = self.up if which == "up" else self.down
        out = [part.strip() for part in text.splitlines() if part.strip()]
        if self.dwell > 0:
            out.append(f"G4 P{self.dwell:g}")
        return out


def gcode_program(
    page,
    pen: PenCommands | None = None,
    feed: float = 3000.0,
    travel_feed: float | None = None,
    origin: str = "bottom-left",
    title: str = "",
) -> str:
    """A G-code program drawing a :class:`~engine.handwriting.page.Page` (strokes in mm, y down).

    ``feed``: drawing speed in mm/min; ``travel_feed``: pen-up speed in mm/min (None: rapid G0 moves)."""
    pen = pen or PenCommands()
    if origin not in ORIGINS:
        raise ValueError(f"unknown origin {origin!r}: use {' or '.join(ORIGINS)}")
    if not feed > 0 or (travel_feed is not None and not travel_feed > 0):
        raise ValueError("feed rates must be positive (mm/min)")

    def coords(stroke: np.ndarray) -> list[tuple[str, str]]:
        xy = np.asarray(stroke, np.float64)
        y = page.height - xy[:, 1] if origin == "bottom-left" else xy[:, 1]
        out: list[tuple[str, str]] = []
        for x_val, y_val in zip(xy[:, 0], y, strict=True):
            point = (f"{x_val + 0.0:.3f}", f"{y_val + 0.0:.3f}")
            point = tuple("0.000" if v == "-0.000" else v for v in point)
            if not out or point != out[-1]:
                out.append(point)
        return out

    travel = "G0" if travel_feed is None else "G1"
    travel_speed = "" if travel_feed is None else f" F{travel_feed:g}"
    label = " ".join(title.split())
    program = [
        f"; Penwright page {getattr(page, 'number', 1)}: {page.width:g} x {page.height:g} mm, origin {origin}",
        *([f"; {label}"] if label else []),
        "G21 ; millimetres",
        "G90 ; absolute positions",
        *pen.lines("up"),
    ]
    for stroke in page.strokes:
        if len(stroke) == 0:
            continue
        points = coords(stroke)
        program.append(f"{travel} X{points[0][0]} Y{points[0][1]}{travel_speed}")
        program.extend(pen.lines("down"))
        for i, (x, y) in enumerate(points[1:]):
            program.append(f"G1 X{x} Y{y}" + (f" F{feed:g}" if i == 0 else ""))
        program.extend(pen.lines("up"))
    program.append(f"{travel} X0 Y0{travel_speed}")
    return "\n".join(program) + "\n"


def write_gcode(path: str | Path, page, **kwargs) -> None:
    atomic_write_text(path, gcode_program(page, **kwargs))
