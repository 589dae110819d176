"""Pages in real units: page geometry, text wrapping, and placing written lines on pages in millimetres.

geometry = PageGeometry.from_options(page="A4", margin="20mm", letter_height="3.5mm", line_spacing="10mm")
pages, lines = write_pages(writer, "A long text...\n\nA second paragraph.", geometry, bias=0.75, seed=1)
pages[0].strokes                                    # list of (n, 2) arrays, millimetres, y down, page coordinates

How sizes are estimated (all in the model's sensor units, measured on the strokes themselves):

* **Letter height** is the x-height: the height of a lowercase letter without ascenders or descenders.
  Along every stroke we find the local minima and maxima of y (after a light smoothing, so pen jitter does
  not count); in cursive writing most minima lie on the baseline and most maxima on the x-height line, while
  ascenders and descenders are a minority. A line's x-height is median(maxima) - median(minima) and its
  baseline median(minima). A page uses ONE scale factor: the requested letter height divided by the median
  x-height of all its lines, so every line is written at the same size.
* **Slope**: a line's baseline slope is a least-squares fit through its local minima, refitted once without
  outliers (descenders, dots); it is removed by a vertical shear (capped at +-0.2, about 11 degrees), so a
  line that drifts up or down is written level. ``straighten=False`` keeps the model's slope.
* **Character width** (for wrapping, before anything is written): the model's mean x advance per step (the
  normaliser's mean dx) divided by its characters per step gives sensor units per character. Converting it
  to millimetres needs the x-height in sensor units, which only written strokes tell; until then we assume
  a written character advances ``ADVANCE_PER_X_HEIGHT`` x-heights (typical of cursive English). After
  writing, :func:`write_pages` measures both on the written lines (ink width / characters, x-height) and,
  when a line would not fit, wraps again with the measured values and writes once more.
* A line that still overflows the width is shrunk (that line only) to fit, with a note; strokes are finally
  clipped to the page, so every coordinate lies on the paper (this only touches runaway scribbles).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from engine.handwriting.writer import offsets_to_strokes

MM_PER_INCH = 25.4
PAGE_SIZES = {"a4": (210.0, 297.0), "a5": (148.0, 210.0), "letter": (215.9, 279.4)}
ADVANCE_PER_X_HEIGHT = 1.25  # prior: a written character (spaces included) advances about 1.25 x-heights
PLAUSIBLE_ADVANCE = (0.4, 4.0)  # measured advance / x-height outside this: the x-height measure is not trusted
MAX_SLOPE = 0.2
# A style's measured character width is taken this much wider when wrapping: written lines vary about it, and a
# line wider than the page costs writing the page again (pages rewritten, preset styles, 18 pages: 5 at 1.0, 1 at 1.1).
WRAP_MARGIN = 1.1
FIRST_BASELINE = 2.0  # first baseline sits this many letter heights below the top margin (room for ascenders)
DESCENT = 1.0  # letter heights kept below the last baseline (room for descenders)
_UNITS = {"mm": 1.0, "cm": 10.0, "in": MM_PER_INCH, '"': MM_PER_INCH, "pt": MM_PER_INCH / 72, "px": MM_PER_INCH / 96}
_LENGTH = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(mm|cm|in|\"|pt|px)?\s*$")


class PageError(ValueError):
    """A page setting that cannot work (sizes, margins, spacing): the message says which and why."""


def parse_length(text: str | float, default_unit: str = "mm") -> float:
    """ "20", "20mm", "2cm", "0.75in", "12pt", "3px" (1/96 in) -> millimetres. A bare number is ``default_unit``."""
    if isinstance(text, (int, float)):
        return float(text) * _UNITS[default_unit]
    match = _LENGTH.match(str(text).lower())
    if not match:
        raise PageError(f"not a length: {text!r} (use e.g. 20mm, 2cm or 0.75in)")
    return float(match[1]) * _UNITS[match[2] or default_unit]


def parse_page_size(text: str) -> tuple[float, float]:
    """ "A4", "A5", "Letter" (add "-landscape" to turn it), or "WxH" with a unit: "210x297mm", "8.5x11in"."""
    name = text.strip().lower()
    landscape = name.endswith(("-landscape", " landscape"))
    if landscape:
        name = name[: -len("-landscape")]
    if name in PAGE_SIZES:
        w, h = PAGE_SIZES[name]
        return (h, w) if landscape else (w, h)
    match = re.match(r"^\s*([0-9.]+)\s*[x\u00d7]\s*([0-9.]+)\s*(mm|cm|in)?\s*$", name)
    if not match:
        raise PageError(f"unknown page size {text!r}: use A4, A5, Letter or WxH with a unit (210x297mm, 8.5x11in)")
    unit = match[3] or "mm"
    return parse_length(match[1] + unit), parse_length(match[2] + unit)


def parse_margins(text: str | float) -> tuple[float, float, float, float]:
    """One length for all sides, two (vertical, horizontal) or four (top, right, bottom, left), comma-separated."""
    if isinstance(text, (int, float)):
        return (float(text),) * 4
    parts = [parse_length(p) for p in str(text).split(",")]
    if len(parts) == 1:
        return (parts[0],) * 4
    if len(parts) == 2:
        return (parts[0], parts[1], parts[0], parts[1])
    if len(parts) == 4:
        return tuple(parts)
    raise PageError(f"margins {text!r}: give one length, two (vertical,horizontal) or four (top,right,bottom,left)")


@dataclass(frozen=True)
class PageGeometry:
    """A page in millimetres: size, margins (top, right, bottom, left), baseline-to-baseline line spacing and
    the letter (x-) height the writing is scaled to."""

    width: float = 210.0
    height: float = 297.0
    margins: tuple[float, float, float, float] = (20.0, 20.0, 20.0, 20.0)
    line_spacing: float = 10.0
    letter_height: float = 3.5

    def __post_init__(self) -> None:
        for name in ("width", "height", "letter_height", "line_spacing"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise PageError(f"the {name.replace('_', ' ')} must be a positive length, not {value:g} mm")
        if len(self.margins) != 4 or any(not (math.isfinite(m) and m >= 0) for m in self.margins):
            raise PageError(f"margins must be four lengths of at least 0 mm, not {self.margins}")
        top, right, bottom, left = self.margins
        if left + right >= self.width:
            raise PageError(
                f"the left and right margins ({left:g} + {right:g} mm) leave no room on a page {self.width:g} mm wide"
            )
        if top + bottom >= self.height:
            raise PageError(
                f"the top and bottom margins ({top:g} + {bottom:g} mm) leave no room on a page {self.height:g} mm high"
            )
        needed = (FIRST_BASELINE + DESCENT) * self.letter_height
        if needed > self.usable_height:
            raise PageError(
                f"a line of writing {self.letter_height:g} mm high needs about {needed:g} mm, but the margins leave "
                f"{self.usable_height:g} mm: use smaller margins or letters"
            )

    @classmethod
    def from_options(
        cls,
        page: str = "A4",
        margin: str | float = "20mm",
        line_spacing: str | float | None = None,
        letter_height: str | float = "3.5mm",
    ) -> PageGeometry:
        """From user strings (the CLI's); ``line_spacing`` defaults to about three letter heights."""
        width, height = parse_page_size(page)
        lh = parse_length(letter_height)
        spacing = parse_length(line_spacing) if line_spacing is not None else round(lh * 20 / 7, 2)
        return cls(width, height, parse_margins(margin), spacing, lh)

    @property
    def usable_width(self) -> float:
        return self.width - self.margins[1] - self.margins[3]

    @property
    def usable_height(self) -> float:
        return self.height - self.margins[0] - self.margins[2]

    @property
    def lines_per_page(self) -> int:
        room = self.usable_height - (FIRST_BASELINE + DESCENT) * self.letter_height
        return int(math.floor(room / self.line_spacing + 1e-9)) + 1

    def baseline(self, slot: int) -> float:
        """y (mm, down) of the baseline of the ``slot``-th line on a page (0 first)."""
        return self.margins[0] + FIRST_BASELINE * self.letter_height + slot * self.line_spacing


@dataclass
class Page:
    """One page of writing: strokes in millimetres, y down, origin at the page's top-left corner."""

    width: float
    height: float
    strokes: list[np.ndarray] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)  # the lines written on it, in order ("" for a blank line)
    number: int = 1
    notes: list[str] = field(default_factory=list)


# ---- wrapping -------------------------------------------------------------------------------------------------


def wrap_text(text: str, max_width: float, char_width: float) -> list[str]:
    """Split text into lines whose estimated width (characters x ``char_width``) fits ``max_width``.

    A newline is a hard line break; a blank line between paragraphs is kept as one "" entry (runs of blank
    lines count once, leading and trailing ones are dropped). Words keep their order; a word longer than a
    line is cut into pieces that fit.
    """
    if not (char_width > 0 and max_width > 0):
        raise PageError("wrapping needs a positive line width and character width")
    max_chars = max(1, int(math.floor(max_width / char_width + 1e-9)))
    out: list[str] = []
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        words = raw.split()
        if not words:
            if out and out[-1] != "":
                out.append("")
            continue
        line = ""
        for word in words:
            while len(word) > max_chars:
                if line:
                    out.append(line)
                    line = ""
                out.append(word[:max_chars])
                word = word[max_chars:]
            if not word:
                continue
            if not line:
                line = word
            elif len(line) + 1 + len(word) <= max_chars:
                line += " " + word
            else:
                out.append(line)
                line = word
        if line:
            out.append(line)
    while out and out[-1] == "":
        out.pop()
    return out


# ---- measuring written lines (sensor units, y up) -----------------------------------------------------------


def _moving_average(values: np.ndarray, k: int = 3) -> np.ndarray:
    if len(values) < k:
        return values
    padded = np.concatenate([np.repeat(values[:1], k // 2), values, np.repeat(values[-1:], k // 2)])
    return np.convolve(padded, np.ones(k) / k, mode="valid")


def local_extrema(strokes: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Points (x, y) where y has a local minimum / maximum along a stroke (y lightly smoothed first). A stroke
    without any turning point contributes its lowest and highest point."""
    minima, maxima = [], []
    for stroke in strokes:
        if len(stroke) < 2:
            continue
        y = _moving_average(stroke[:, 1])
        dy = np.sign(np.diff(y))
        # carry the last non-zero direction over flat steps
        for i in range(1, len(dy)):
            if dy[i] == 0:
                dy[i] = dy[i - 1]
        turn = np.flatnonzero(dy[:-1] != dy[1:]) + 1
        lows = [i for i in turn if dy[i - 1] < 0 < dy[i]]
        highs = [i for i in turn if dy[i - 1] > 0 > dy[i]]
        minima.extend(stroke[i] for i in (lows or [int(np.argmin(stroke[:, 1]))]))
        maxima.extend(stroke[i] for i in (highs or [int(np.argmax(stroke[:, 1]))]))
    empty = np.zeros((0, 2))
    return (np.array(minima) if minima else empty), (np.array(maxima) if maxima else empty)


@dataclass
class LineShape:
    """What layout needs to know about one written line (sensor units, y up)."""

    baseline: float  # y of the baseline at x = left
    slope: float  # dy/dx of the baseline removed when straightening (0 when not)
    x_height: float
    left: float
    right: float


def _baseline_fit(minima: np.ndarray) -> tuple[float, float]:
    """(slope, intercept) of a line through the minima, refitted once without outliers."""
    x, y = minima[:, 0], minima[:, 1]
    if len(minima) < 3 or np.ptp(x) <= 0:
        return 0.0, float(np.median(y))
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (slope * x + intercept)
    mad = np.median(np.abs(residual - np.median(residual))) + 1e-9
    keep = np.abs(residual) <= 2.5 * 1.4826 * mad
    if keep.sum() >= 3 and np.ptp(x[keep]) > 0:
        slope, intercept = np.polyfit(x[keep], y[keep], 1)
    return float(slope), float(intercept)


def line_shape(strokes: list[np.ndarray], straighten: bool = True) -> LineShape:
    """Baseline, slope and x-height of a written line (see the module's notes)."""
    xy = np.concatenate(strokes)
    left, right = float(xy[:, 0].min()), float(xy[:, 0].max())
    minima, maxima = local_extrema(strokes)
    slope = 0.0
    if straighten and len(minima):
        slope = float(np.clip(_baseline_fit(minima)[0], -MAX_SLOPE, MAX_SLOPE))

    def level(points: np.ndarray) -> np.ndarray:
        return points[:, 1] - slope * (points[:, 0] - left)

    if len(minima) and len(maxima):
        baseline = float(np.median(level(minima)))
        x_height = float(np.median(level(maxima)) - baseline)
    else:
        baseline, x_height = float(np.median(level(xy))), 0.0
    if not x_height > 0:  # degenerate scribble: half the line's height
        x_height = max(float(np.ptp(level(xy))) / 2, 1e-6)
    return LineShape(baseline, slope, x_height, left, right)


@dataclass
class TextMetrics:
    """Sensor units per written character (ink advance, spaces included) and the x-height, both y-up units."""

    char_width: float
    x_height: float

    def char_width_mm(self, letter_height: float) -> float:
        """Estimated written width of one character in mm when the x-height is ``letter_height`` mm."""
        return self.char_width * letter_height / self.x_height

    @classmethod
    def from_model(cls, normalizer_mean_dx: float, chars_per_step: float) -> TextMetrics:
        """Before writing: mean dx per step / characters per step; the x-height from ``ADVANCE_PER_X_HEIGHT``."""
        char_width = abs(float(normalizer_mean_dx)) / max(float(chars_per_step), 1e-6)
        if not char_width > 0:
            char_width = 1.0
        return cls(char_width, char_width / ADVANCE_PER_X_HEIGHT)

    @classmethod
    def from_writer(cls, writer) -> TextMetrics:
        return cls.from_model(writer.normalizer.mean[0], writer.chars_per_step)

    @classmethod
    def measure(cls, lines: list[list[np.ndarray]], texts: list[str], straighten: bool = True) -> TextMetrics | None:
        """From written lines: median of (ink width / characters) and median x-height; None without ink.

        When the two disagree wildly (advance per x-height outside ``PLAUSIBLE_ADVANCE``: flat scribbles from an
        untrained model, say), the x-height is not letter-like and ``ADVANCE_PER_X_HEIGHT`` stands in for it."""
        widths, heights = [], []
        for strokes, text in zip(lines, texts, strict=True):
            if not strokes or not text:
                continue
            shape = line_shape(strokes, straighten)
            widths.append(max(shape.right - shape.left, 1e-6) / len(text))
            heights.append(shape.x_height)
        if not widths:
            return None
        char_width, x_height = float(np.median(widths)), float(np.median(heights))
        if not PLAUSIBLE_ADVANCE[0] <= char_width / x_height <= PLAUSIBLE_ADVANCE[1]:
            x_height = char_width / ADVANCE_PER_X_HEIGHT
        return cls(char_width, x_height)


# ---- layout ---------------------------------------------------------------------------------------------------


def smooth_stroke(points: np.ndarray, passes: int = 1) -> np.ndarray:
    """A light [1, 2, 1] / 4 moving average, ``passes`` times; the end points stay where they are."""
    out = np.array(points, np.float64, copy=True)
    for _ in range(max(0, passes)):
        if len(out) < 3:
            break
        out[1:-1] = 0.25 * out[:-2] + 0.5 * out[1:-1] + 0.25 * out[2:]
    return out


def layout_pages(
    lines: list[list[np.ndarray]],
    geometry: PageGeometry,
    texts: list[str] | None = None,
    straighten: bool = True,
    smooth: int = 0,
    x_height: float | None = None,
) -> list[Page]:
    """Place written lines (strokes in sensor units, y up; an empty list is a blank line) on pages.

    One scale for everything: ``geometry.letter_height / x_height`` (``x_height``: unless given, the median
    x-height of the lines, checked against their width per character by :meth:`TextMetrics.measure` when the
    texts are given). Each line is straightened (optional), left-aligned at the left margin with its baseline
    on the page's next baseline; lines that do not fit go to the next page (blank lines at the top of a page
    are dropped).
    """
    texts = list(texts) if texts is not None else [""] * len(lines)
    if len(texts) != len(lines):
        raise ValueError("give one text per line")
    shapes = [line_shape(strokes, straighten) if strokes else None for strokes in lines]
    if x_height is None:
        metrics = TextMetrics.measure(lines, texts, straighten) if any(texts) else None
        heights = [s.x_height for s in shapes if s is not None]
        x_height = metrics.x_height if metrics is not None else float(np.median(heights)) if heights else 1.0
    scale = geometry.letter_height / x_height
    left_margin = geometry.margins[3]
    pages: list[Page] = []
    page: Page | None = None
    slot = 0
    for strokes, text, shape in zip(lines, texts, shapes, strict=True):
        if page is None or slot >= geometry.lines_per_page:
            page = Page(geometry.width, geometry.height, number=len(pages) + 1)
            pages.append(page)
            slot = 0
        if shape is None:
            if slot > 0:
                page.texts.append(text)
                slot += 1
            continue
        k = scale
        width = (shape.right - shape.left) * scale
        if width > geometry.usable_width:
            k = scale * geometry.usable_width / width
            page.notes.append(
                f"line {text!r} was {width:.0f} mm wide, wider than the {geometry.usable_width:.0f} mm between the "
                f"margins: it is written {100 * k / scale:.0f}% smaller"
            )
        baseline = geometry.baseline(slot)
        for stroke in strokes:
            x = stroke[:, 0] - shape.left
            y = stroke[:, 1] - shape.slope * x - shape.baseline
            placed = np.column_stack([left_margin + x * k, baseline - y * k])
            if smooth:
                placed = smooth_stroke(placed, smooth)
            placed[:, 0] = np.clip(placed[:, 0], 0.0, geometry.width)
            placed[:, 1] = np.clip(placed[:, 1], 0.0, geometry.height)
            page.strokes.append(placed)
        page.texts.append(text)
        slot += 1
    if not pages:
        pages.append(Page(geometry.width, geometry.height))
    return pages


def write_pages(
    writer,
    text: str,
    geometry: PageGeometry,
    bias: float = 0.0,
    seed: int | None = None,
    straighten: bool = True,
    smooth: int = 0,
    rewrap: bool = True,
    **write_kwargs,
):
    """Wrap ``text`` to the page, write it with ``writer`` (a HandwritingWriter) and lay it out.

    Returns (pages, written lines). Wrapping first uses the measures of the style (``prime``), else
    :meth:`TextMetrics.from_writer`; when a written line turns out wider than the page, the text is wrapped again
    with the metrics measured on what was written and written once more (same seed), so the result stays
    reproducible.
    """
    if not text.split():
        raise PageError("there is no text to write")
    # With a style, its own measures. Not the hand invented for a page without one: lines primed with it regress
    # towards the average hand, so its measures overestimate them (median line 77% full against 90% after a
    # rewrap with what was written; 8 seeds: 1 page rewritten instead of 7, at that cost in paper).
    metrics = _wrap_metrics(writer, write_kwargs.get("prime"))
    wrapped = wrap_text(text, geometry.usable_width, metrics.char_width_mm(geometry.letter_height))
    written = _write_wrapped(writer, wrapped, bias, seed, **write_kwargs)
    if rewrap:
        measured = TextMetrics.measure(
            [w.strokes if w else [] for w in written], [w.text if w else "" for w in written]
        )
        if measured is not None:
            scale = geometry.letter_height / measured.x_height
            too_wide = any(
                np.ptp(np.concatenate(w.strokes)[:, 0]) * scale > geometry.usable_width
                for w in written
                if w is not None and w.strokes
            )
            if too_wide:
                char_mm = 1.05 * measured.char_width_mm(geometry.letter_height)
                rewrapped = wrap_text(text, geometry.usable_width, char_mm)
                if rewrapped != wrapped:
                    wrapped = rewrapped
                    written = _write_wrapped(writer, wrapped, bias, seed, **write_kwargs)
    pages = layout_pages(
        [w.strokes if w is not None else [] for w in written],
        geometry,
        [w.text if w is not None else "" for w in written],
        straighten,
        smooth,
    )
    return pages, [w for w in written if w is not None]


def _wrap_metrics(writer, prime) -> TextMetrics:
    """What a character is expected to take before anything is written: with a style, as the style's own strokes
    measure (primed writing follows them, and with the style matched it is their width; pages written twice
    because a line overflowed, preset styles, 18 pages: 13 with the model's average, 1 with this; median line
    82% full against 85%, "Penwright quick" matched, 3 seeds), else the model's average."""
    if prime is not None:
        measured = TextMetrics.measure([offsets_to_strokes(prime.offsets, pen_down_at_start=False)], [prime.text])
        if measured is not None:
            return TextMetrics(measured.char_width * WRAP_MARGIN, measured.x_height)
    return TextMetrics.from_writer(writer)


def _write_wrapped(writer, wrapped: list[str], bias, seed, **write_kwargs):
    """Write the non-blank lines as one batch, in one hand (without a style, one the network invents for the
    seed); None stands for a blank line."""
    content = [t for t in wrapped if t]
    write_kwargs.setdefault("one_hand", True)
    lines = iter(writer.write(content, bias=bias, seed=seed, **write_kwargs) if content else [])
    return [next(lines) if t else None for t in wrapped]
