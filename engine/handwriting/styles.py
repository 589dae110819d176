"""Styles from the user's own handwriting: pen strokes plus what they say -> a priming sequence.

Pen input comes as strokes of points (x, y, time in s, pressure), y growing DOWNWARD, in any unit and at
any sampling rate (a tablet at 200 Hz, a mouse at 60 Hz, a scan of pixels). The model was trained on
IAM-OnDB: a whiteboard sampled at about 100 Hz, in sensor units. :func:`prime_from_strokes` makes the
user's ink look like that data before the network reads it:

1. checks: finite coordinates below 1e7, some ink, text in the model's alphabet, and about as much ink
   as the text needs (characters per unit of ink far from IAM-OnDB's means a wrong transcription);
2. letter height, estimated robustly (:func:`engine.handwriting.style_metrics.letter_height`: the
   interquartile band of the detrended y of the ink), sets the scale: the writing is scaled so its
   letter height is IAM-OnDB's typical one;
3. jitter removal: points closer than ``JITTER_FRACTION`` of the letter height to the last kept point are
   dropped; a Catmull-Rom curve through the rest is traced finely and smoothed lightly (stroke ends stay);
4. each stroke is resampled by arc length at IAM-OnDB's mean point spacing, so the network sees as many
   points per letter as it saw in training, whatever the device's sampling rate;
5. the model's point convention (``skip2`` keeps every second point) and offsets, as for training data.

A style file (``NAME.penwright-style.json``) stores the raw strokes, not the prime, so a later model with
another convention can use it. Format, version 1 (floats rounded to 6 significant digits)::

    {"format": "penwright-style", "version": 1, "name": "Ada", "text": "the quick brown fox",
     "strokes": [[[x, y, t, pressure], ...], ...],          # y down, any unit; t and pressure may be null
     "source": {"device": "tablet", "sampling_rate_hz": 200},   # what is known about the input
     "created": "2026-11-28T06:00:00+00:00",
     "prime": {"convention": "skip2", "offsets": [[dx, dy_up, eos], ...]}}   # optional cache
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from engine.atomic import atomic_write_text
from engine.handwriting.alphabet import Alphabet, UnknownCharactersError
from engine.handwriting.style_metrics import ink_length, letter_height
from engine.handwriting.writer import Prime

# Measured on 400 random IAM-OnDB training lines (trainset + testset_t, seed 0) loaded with
# engine.handwriting.dataset.load_lines, with the measures of engine.handwriting.style_metrics on the raw
# recorded points (about 100 Hz):
#   letter height (interquartile band of detrended y): median 95.5 sensor units (p5 63, p95 157);
#   mean distance between consecutive points of a stroke / letter height: median 0.208 (p5 0.150, p95 0.296);
#   characters per letter height of ink (len(text) / (arc length / letter height)): median 0.235
#   (p1 0.133, p5 0.172, p95 0.328, p99 0.424); letter width / height: median 1.88; slant: median 0.2 degrees.
IAM_LETTER_HEIGHT = 95.5
IAM_POINT_SPACING = 0.208  # of the letter height
IAM_CHARS_PER_INK = 0.235  # characters per letter height of ink
# Text with more than this factor more or fewer characters per ink than IAM-OnDB's median is refused.
CHARS_PER_INK_TOLERANCE = 3.0
JITTER_FRACTION = 0.02  # of the letter height
# Strokes are first traced finely (a Catmull-Rom curve through the points, resampled every FINE_SPACING of the
# letter height) and smoothed once with [1, 2, 1] / 4 there: jitter below about 3% of the letter height goes,
# letters keep their shape, and the smoothing is the same whatever the device's rate.
FINE_SPACING = 0.04
MAX_COORDINATE = 1e7

STYLE_FORMAT = "penwright-style"
STYLE_VERSION = 1
STYLE_SUFFIX = ".penwright-style.json"


class StyleError(ValueError):
    """Pen input or a style file that cannot become a style; the message says why."""


class StyleExistsError(StyleError):
    """A style of that name exists and overwriting was not asked for."""


# ----- pen input -> prime --------------------------------------------------------------------------------------
def _as_strokes(strokes) -> list[np.ndarray]:
    """Validated float64 (n, 4) arrays (x, y, t, pressure; NaN where unknown); empty strokes dropped."""
    out = []
    for i, stroke in enumerate(strokes):
        try:
            a = np.asarray(stroke, np.float64)
        except (TypeError, ValueError) as exc:
            raise StyleError(f"stroke {i} is not a list of numeric points: {exc}") from exc
        if a.size == 0:
            continue
        if a.ndim != 2 or not 2 <= a.shape[1] <= 4:
            raise StyleError(f"stroke {i} must be a list of points (x, y[, time[, pressure]]), got shape {a.shape}")
        if not np.isfinite(a[:, :2]).all():
            raise StyleError(f"stroke {i} has coordinates that are not finite numbers (NaN or infinity)")
        if np.abs(a[:, :2]).max() > MAX_COORDINATE:
            raise StyleError(f"stroke {i} has coordinates beyond {MAX_COORDINATE:g}: not pen input")
        full = np.full((len(a), 4), np.nan)
        full[:, : a.shape[1]] = a
        out.append(full)
    if sum(len(s) for s in out) < 2:
        raise StyleError("the handwriting needs at least two points")
    return out


def _dejitter(xy: np.ndarray, min_step: float) -> np.ndarray:
    """Drop points closer than ``min_step`` to the last kept point; the stroke's last point always stays."""
    keep = [0]
    for i in range(1, len(xy)):
        if np.hypot(*(xy[i] - xy[keep[-1]])) >= min_step:
            keep.append(i)
    if keep[-1] != len(xy) - 1:
        if len(keep) > 1 and np.hypot(*(xy[-1] - xy[keep[-1]])) < min_step:
            keep[-1] = len(xy) - 1
        else:
            keep.append(len(xy) - 1)
    return xy[keep]


def _densify(xy: np.ndarray, max_step: float) -> np.ndarray:
    """A Catmull-Rom curve through the points, sampled at least every ``max_step``: sparse input (a mouse at
    60 Hz) gets round letters instead of polygons."""
    if len(xy) < 3:
        return xy
    padded = np.vstack([2 * xy[0] - xy[1], xy, 2 * xy[-1] - xy[-2]])
    pieces = [xy[:1]]
    for i in range(len(xy) - 1):
        p0, p1, p2, p3 = padded[i : i + 4]
        n = max(int(np.ceil(np.hypot(*(p2 - p1)) / max_step)), 1)
        t = (np.arange(1, n + 1) / n)[:, None]
        pieces.append(
            0.5 * (2 * p1 + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2 + (3 * p1 - p0 - 3 * p2 + p3) * t**3)
        )
    return np.concatenate(pieces)


def _smooth(xy: np.ndarray) -> np.ndarray:
    """One [1, 2, 1] / 4 pass; the stroke's ends stay put."""
    if len(xy) < 3:
        return xy
    out = xy.copy()
    out[1:-1] = 0.25 * xy[:-2] + 0.5 * xy[1:-1] + 0.25 * xy[2:]
    return out


def _resample(xy: np.ndarray, spacing: float) -> np.ndarray:
    """Points every ``spacing`` of arc length along the stroke, its first and last point kept."""
    if len(xy) < 2:
        return xy
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(xy, axis=0).T))])
    total = arc[-1]
    if total <= 0:
        return xy[:1]
    n = max(int(round(total / spacing)), 1)
    at = np.linspace(0.0, total, n + 1)
    return np.stack([np.interp(at, arc, xy[:, 0]), np.interp(at, arc, xy[:, 1])], axis=1)


def normalise_strokes(strokes, text: str | None = None) -> list[np.ndarray]:
    """Pen strokes (y down, any unit and rate) -> (n, 2) strokes (y down) in IAM-OnDB's units and point density.

    ``text`` (already checked against the alphabet) enables the ink-versus-text check.
    """
    raw = _as_strokes(strokes)
    xy_strokes = [s[:, :2] for s in raw]
    height = letter_height(xy_strokes)
    if not height > 0:
        raise StyleError("the handwriting has no height: draw some letters (the strokes are empty or flat)")
    ink = ink_length(xy_strokes) / height
    if text is not None:
        ratio = len(text) / ink
        if ratio > IAM_CHARS_PER_INK * CHARS_PER_INK_TOLERANCE:
            raise StyleError(
                f"the text is too long for the ink: {len(text)} characters for about "
                f"{ink * IAM_CHARS_PER_INK:.0f} characters' worth of handwriting; write the whole text"
            )
        if ratio < IAM_CHARS_PER_INK / CHARS_PER_INK_TOLERANCE:
            raise StyleError(
                f"the text is too short for the ink: {len(text)} characters for about "
                f"{ink * IAM_CHARS_PER_INK:.0f} characters' worth of handwriting; type all that was written"
            )
    scale = IAM_LETTER_HEIGHT / height
    origin = xy_strokes[0][0]
    out = []
    for xy in xy_strokes:
        xy = (xy - origin) * scale
        xy = _dejitter(xy, JITTER_FRACTION * IAM_LETTER_HEIGHT)
        fine = FINE_SPACING * IAM_LETTER_HEIGHT
        xy = _smooth(_resample(_densify(xy, fine), fine))
        out.append(_resample(xy, IAM_POINT_SPACING * IAM_LETTER_HEIGHT))
    return out


def check_text(text: str, alphabet: Alphabet | None) -> str:
    """The text as the model writes it; StyleError when empty or outside the alphabet."""
    if not text or not text.strip():
        raise StyleError("a style needs the text of its handwriting")
    if alphabet is None:
        return " ".join(text.split())
    try:
        return alphabet.prepare(text).text
    except UnknownCharactersError as exc:
        raise StyleError(f"the style's text: {exc}") from exc
    except ValueError as exc:
        raise StyleError(f"the style's text: {exc}") from exc


def prime_from_strokes(strokes, text: str, convention: str, alphabet: Alphabet | None = None) -> Prime:
    """Pen strokes (y down) and their transcription -> a Prime in the model's units and point convention."""
    clean = check_text(text, alphabet)
    normalised = normalise_strokes(strokes, clean)
    points = np.concatenate(
        [np.column_stack([s, np.zeros(len(s))]) for s in normalised if len(s)],
    )
    ends = np.cumsum([len(s) for s in normalised if len(s)]) - 1
    points[ends, 2] = 1
    if len(points) < 2:
        raise StyleError("the handwriting needs at least two points")
    return Prime.from_points(points, clean, convention)


# ----- styles and style files ----------------------------------------------------------------------------------
@dataclass
class Style:
    name: str
    text: str
    strokes: list[np.ndarray]  # (n, 4) x, y (down), time s, pressure; NaN where unknown
    source: dict = field(default_factory=dict)  # device, sampling_rate_hz, ... as far as known
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    cached_prime: dict | None = None  # {"convention": ..., "offsets": (T, 3) array}

    def __post_init__(self) -> None:
        self.strokes = _as_strokes(self.strokes)
        if "sampling_rate_hz" not in self.source:
            rate = sampling_rate(self.strokes)
            if rate is not None:
                self.source["sampling_rate_hz"] = round(rate, 1)

    def prime(self, convention: str, alphabet: Alphabet | None = None) -> Prime:
        """The priming sequence for a model of this convention (cached in the style once computed)."""
        text = check_text(self.text, alphabet)
        cached = self.cached_prime
        if cached is not None and cached.get("convention") == convention:
            return Prime(np.asarray(cached["offsets"], np.float32), text)
        prime = prime_from_strokes(self.strokes, text, convention, alphabet)
        self.cached_prime = {"convention": convention, "offsets": prime.offsets}
        return prime


def sampling_rate(strokes: list[np.ndarray]) -> float | None:
    """The device's rate (points per second) from the points' times: the median time step; None when unknown."""
    steps = np.concatenate([np.diff(s[:, 2]) for s in strokes if s.shape[1] > 2 and len(s) > 1] or [np.zeros(0)])
    steps = steps[np.isfinite(steps) & (steps > 0)]
    return float(1.0 / np.median(steps)) if len(steps) else None


def _number(v: float, digits: int = 6):
    return None if not math.isfinite(v) else float(f"{v:.{digits}g}")


def style_to_dict(style: Style) -> dict:
    data = {
        "format": STYLE_FORMAT,
        "version": STYLE_VERSION,
        "name": style.name,
        "text": style.text,
        "strokes": [[[_number(v) for v in p] for p in s] for s in style.strokes],
        "source": dict(style.source),
        "created": style.created,
    }
    if style.cached_prime is not None:
        offsets = np.asarray(style.cached_prime["offsets"], np.float64)
        data["prime"] = {
            "convention": style.cached_prime["convention"],
            "offsets": [[round(float(dx), 3), round(float(dy), 3), int(e)] for dx, dy, e in offsets],
        }
    return data


def style_from_dict(data) -> Style:
    if not isinstance(data, dict) or data.get("format") != STYLE_FORMAT:
        raise StyleError("not a Penwright style file (its format field is missing or wrong)")
    version = data.get("version")
    if not isinstance(version, int) or version > STYLE_VERSION:
        raise StyleError(f"style file version {version!r} is newer than this Penwright reads ({STYLE_VERSION})")
    try:
        strokes = [
            np.array([[np.nan if v is None else float(v) for v in p] for p in s], np.float64).reshape(len(s), -1)
            for s in data["strokes"]
        ]
        prime = data.get("prime")
        cached = None
        if prime is not None:
            cached = {"convention": str(prime["convention"]), "offsets": np.asarray(prime["offsets"], np.float32)}
            if cached["offsets"].ndim != 2 or cached["offsets"].shape[1] != 3:
                raise StyleError("the style file's cached prime is malformed")
        return Style(
            name=str(data["name"]),
            text=str(data["text"]),
            strokes=strokes,
            source=dict(data.get("source") or {}),
            created=str(data.get("created", "")),
            cached_prime=cached,
        )
    except StyleError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise StyleError(f"the style file is damaged: {exc!r}") from exc


def save_style(path: str | Path, style: Style) -> None:
    """Write a style file atomically (a crash never leaves half a file)."""
    atomic_write_text(path, json.dumps(style_to_dict(style), separators=(",", ":"), allow_nan=False) + "\n")


def load_style(path: str | Path) -> Style:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise StyleError(f"style file {path} does not exist") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StyleError(f"style file {path} is not valid JSON (damaged?): {exc}") from exc
    try:
        return style_from_dict(data)
    except StyleError as exc:
        raise StyleError(f"{path}: {exc}") from exc


# ----- the user's styles folder --------------------------------------------------------------------------------
def styles_dir() -> Path:
    from engine.paths import data_dir

    folder = data_dir() / "styles"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def safe_style_name(name: str) -> str:
    """A file-name-safe form of a style's name: letters, digits, space, '-', '_' and '.' kept, at most 64."""
    cleaned = re.sub(r"[^\w .-]", "_", name, flags=re.ASCII).strip(" .")
    cleaned = re.sub(r"\s+", " ", cleaned)[:64].strip(" .")
    if not cleaned:
        raise StyleError(f"{name!r} cannot be used as a style name: use letters or digits")
    return cleaned


def style_path(name: str, folder: Path | None = None) -> Path:
    return (folder or styles_dir()) / (safe_style_name(name) + STYLE_SUFFIX)


def list_styles(folder: Path | None = None) -> list[str]:
    """Names (file stems) of the saved styles, sorted."""
    folder = folder or styles_dir()
    return sorted(p.name[: -len(STYLE_SUFFIX)] for p in folder.glob("*" + STYLE_SUFFIX))


# ----- preset styles (shipped with the app, read-only) ----------------------------------------------------------
def presets_dir() -> Path:
    """resources/styles: the preset styles that ship with the app (lines a Penwright network wrote itself; see
    engine.handwriting.presets). Read-only: works installed, editable and frozen; may not exist."""
    from importlib import resources

    return Path(str(resources.files("resources").joinpath("styles")))


@dataclass(frozen=True)
class StyleEntry:
    """One style a picker can offer: ``preset`` ones ship with the app and cannot be changed or deleted."""

    name: str
    path: Path
    preset: bool = False


def _entries(folder: Path, preset: bool) -> list[StyleEntry]:
    if not folder.is_dir():
        return []
    return sorted(
        (StyleEntry(p.name[: -len(STYLE_SUFFIX)], p, preset) for p in folder.glob("*" + STYLE_SUFFIX)),
        key=lambda e: e.name,
    )


def list_presets(folder: Path | None = None) -> list[str]:
    """Names of the preset styles, sorted (none when the app ships none)."""
    return [e.name for e in _entries(folder or presets_dir(), True)]


def load_preset(name: str, folder: Path | None = None) -> Style:
    path = (folder or presets_dir()) / (safe_style_name(name) + STYLE_SUFFIX)
    if not path.exists():
        raise StyleError(f"there is no preset style named {name!r}")
    return load_style(path)


PRESET_PREFIX = "preset:"  # how the app, the CLI and the tools name a preset: "preset:Penwright neat"


def load_style_or_preset(reference: str) -> Style:
    """A style file's path, or a preset as ``preset:NAME`` (or its bare name when no such file exists)."""
    if reference.startswith(PRESET_PREFIX):
        return load_preset(reference[len(PRESET_PREFIX) :])
    return load_style(reference) if Path(reference).is_file() else load_preset(reference)


def list_style_entries(folder: Path | None = None, presets_folder: Path | None = None) -> list[StyleEntry]:
    """The presets (sorted, marked ``preset``) then the user's saved styles (sorted). A user style may share a
    preset's name: both are listed, told apart by ``preset``."""
    return _entries(presets_folder or presets_dir(), True) + _entries(folder or styles_dir(), False)


def save_named_style(style: Style, overwrite: bool = False, folder: Path | None = None) -> Path:
    path = style_path(style.name, folder)
    if path.exists() and not overwrite:
        raise StyleExistsError(f"a style named {path.name[: -len(STYLE_SUFFIX)]!r} exists already")
    save_style(path, style)
    return path


def load_named_style(name: str, folder: Path | None = None) -> Style:
    return load_style(style_path(name, folder))


def delete_style(name: str, folder: Path | None = None) -> None:
    path = style_path(name, folder)
    if not path.exists():
        raise StyleError(f"there is no style named {name!r}")
    path.unlink()


# ----- IAM-OnDB lines as pen input (tests and benchmarks) ------------------------------------------------------
def strokes_from_iam_xml(content: bytes) -> list[np.ndarray]:
    """One IAM-OnDB lineStrokes XML file -> strokes of (x, y, time, NaN), y down, as recorded."""
    import xml.etree.ElementTree as ET

    root = ET.fromstring(content)
    strokes = []
    for stroke in root.iter("Stroke"):
        pts = [
            (float(p.get("x")), float(p.get("y")), float(p.get("time", "nan")), np.nan) for p in stroke.iter("Point")
        ]
        if pts:
            strokes.append(np.array(pts))
    return strokes


def resample_in_time(strokes: list[np.ndarray], rate_hz: float) -> list[np.ndarray]:
    """What a device sampling at ``rate_hz`` would have recorded of the same pen motion (linear in time).

    IAM-OnDB stores times rounded to 10 ms, so points are taken as evenly spaced in time between each
    stroke's first and last recorded time.
    """
    out = []
    for s in strokes:
        if len(s) < 2 or not np.isfinite(s[[0, -1], 2]).all() or s[-1, 2] <= s[0, 2]:
            out.append(s[:1].copy())
            continue
        t = np.linspace(s[0, 2], s[-1, 2], len(s))
        at = np.arange(t[0], t[-1], 1.0 / rate_hz)
        if t[-1] - at[-1] > 0.25 / rate_hz:
            at = np.append(at, t[-1])
        columns = [np.interp(at, t, s[:, 0]), np.interp(at, t, s[:, 1]), at, np.interp(at, t, s[:, 3])]
        out.append(np.column_stack(columns))
    return out


def iam_pen_lines(
    folder: str | Path, split: str | None = "testset_v", limit: int = 8, one_per_form: bool = False
) -> list[tuple[str, str, list]]:
    """The first ``limit`` lines of an IAM-OnDB split as pen input: (line id, text, timed strokes).

    Lines whose text holds '#' (crossed-out words) are skipped; ``one_per_form``: only each form's first
    usable line (different forms: mostly different writers).
    """
    import tarfile

    from engine.handwriting.iam_ondb import parse_transcriptions, read_split_file, split_of

    folder = Path(folder)
    splits = {split: read_split_file(folder / f"{split}.txt")} if split else {}
    texts: dict[str, list[str]] = {}
    for archive in sorted(folder.glob("ascii*.tar.gz")):
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                if member.isfile() and member.name.endswith(".txt"):
                    texts[Path(member.name).stem] = parse_transcriptions(tar.extractfile(member).read())
    lines = []
    for archive in sorted(folder.glob("lineStrokes*.tar.gz")):
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                if not (member.isfile() and member.name.endswith(".xml")):
                    continue
                line_id = Path(member.name).stem
                form_id, number = line_id.rsplit("-", 1)
                if split and split_of(form_id, splits) != split:
                    continue
                form_texts = texts.get(form_id, [])
                if not number.isdigit() or not 1 <= int(number) <= len(form_texts):
                    continue
                text = form_texts[int(number) - 1]
                if "#" in text or (one_per_form and any(lid.rsplit("-", 1)[0] == form_id for lid, _, _ in lines)):
                    continue
                lines.append((line_id, text, strokes_from_iam_xml(tar.extractfile(member).read())))
                if len(lines) >= limit:
                    return lines
    return lines
