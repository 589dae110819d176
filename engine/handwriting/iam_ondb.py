"""Read the IAM On-Line Handwriting Database in its original distribution format.

The owners distribute ``lineStrokes-all.tar.gz`` (one XML file per text line) and ``ascii-all.tar.gz``
(one text file per form, transcriptions after ``CSR:``). We read either those archives or their
unpacked trees, match every line to its transcription, and apply the IAM-OnDB-t1 split files and the
blacklist when the folder has them. Everything skipped is counted with its reason.
"""

from __future__ import annotations

import re
import tarfile
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SPLIT_FILES = ("trainset", "testset_t", "testset_v", "testset_f")
_LINE_ID = re.compile(r"^([a-z0-9]+-[0-9]+[a-z]?)-([0-9]+)$")


@dataclass
class RawLine:
    """One handwritten line: absolute pen points (x, y, end-of-stroke), y growing downward."""

    line_id: str
    text: str
    points: np.ndarray  # (N, 3) int32: x, y, 1 on the last point of each stroke
    context_points: int = 0  # a joined pair (engine.handwriting.line_pairs): the first line's points

    @property
    def form_id(self) -> str:
        return self.line_id.rsplit("-", 1)[0]


@dataclass
class ReadReport:
    """What was read and what was skipped, with reasons (shown to the user, stored with models)."""

    lines_read: int = 0
    skipped: Counter = field(default_factory=Counter)

    def skip(self, reason: str) -> None:
        self.skipped[reason] += 1

    def summary(self) -> str:
        parts = [f"{self.lines_read} lines read"]
        parts += [f"{n} skipped: {reason}" for reason, n in sorted(self.skipped.items())]
        return "; ".join(parts)


class DataFolderError(ValueError):
    """The folder does not hold IAM-OnDB in a form we can read."""


def _iter_members(folder: Path, kind: str) -> Iterator[tuple[str, bytes]]:
    """Yield (relative path, content) for files under ``kind/`` in archives or unpacked trees."""
    tree = folder / kind
    if tree.is_dir():
        suffix = ".xml" if kind == "lineStrokes" else ".txt"
        for path in sorted(tree.rglob(f"*{suffix}")):
            yield path.relative_to(folder).as_posix(), path.read_bytes()
        return
    archives = sorted(folder.glob(f"{kind}*.tar.gz")) + sorted(folder.glob(f"{kind}*.tgz"))
    if not archives:
        raise DataFolderError(
            f"{folder} has neither a {kind}/ folder nor a {kind}*.tar.gz archive. Point Penwright at the "
            "folder holding IAM-OnDB's lineStrokes-all.tar.gz and ascii-all.tar.gz."
        )
    for archive in archives:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                if member.isfile():
                    handle = tar.extractfile(member)
                    if handle is not None:
                        yield member.name.lstrip("./"), handle.read()


def parse_transcriptions(content: bytes) -> list[str]:
    """Lines after ``CSR:`` in one ascii form file; the N-th non-empty one belongs to line N."""
    text = content.decode("latin-1")
    marker = text.find("CSR:")
    if marker < 0:
        return []
    return [line.strip() for line in text[marker + 4 :].splitlines() if line.strip()]


def parse_line_strokes(content: bytes) -> np.ndarray:
    """Points of one lineStrokes XML file as (N, 3) int32 (x, y, end-of-stroke); y grows downward."""
    root = ET.fromstring(content)
    rows: list[tuple[int, int, int]] = []
    for stroke in root.iter("Stroke"):
        pts = [(int(float(p.get("x", "nan"))), int(float(p.get("y", "nan")))) for p in stroke.iter("Point")]
        if not pts:
            continue
        rows.extend((x, y, 0) for x, y in pts)
        rows[-1] = (rows[-1][0], rows[-1][1], 1)
    return np.asarray(rows, dtype=np.int32).reshape(-1, 3)


def read_split_file(path: Path) -> set[str]:
    return {line.strip() for line in path.read_text().splitlines() if line.strip()}


def split_of(form_id: str, splits: dict[str, set[str]]) -> str | None:
    """Which split holds a form. An entry without the final letter covers every form starting with it;
    an exact entry wins over such a covering entry in another split."""
    for name, ids in splits.items():
        if form_id in ids:
            return name
    if form_id[-1:].isalpha():
        for name, ids in splits.items():
            if form_id[:-1] in ids:
                return name
    return None


def read_iam_ondb(folder: str | Path, report: ReadReport | None = None) -> list[RawLine]:
    """Read every line that has strokes and a transcription; blacklisted lines are left out."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DataFolderError(f"IAM-OnDB folder {folder} does not exist")
    report = report if report is not None else ReadReport()
    blacklist_path = folder / "blacklist.txt"
    blacklist = read_split_file(blacklist_path) if blacklist_path.exists() else set()

    transcriptions: dict[str, list[str]] = {}
    for name, content in _iter_members(folder, "ascii"):
        if name.endswith(".txt"):
            transcriptions[Path(name).stem] = parse_transcriptions(content)

    lines: list[RawLine] = []
    for name, content in _iter_members(folder, "lineStrokes"):
        if not name.endswith(".xml"):
            continue
        line_id = Path(name).stem
        match = _LINE_ID.match(line_id)
        if match is None:
            report.skip("file name is not a line id")
            continue
        form_id, number = match.group(1), int(match.group(2))
        if line_id in blacklist:
            report.skip("blacklisted")
            continue
        texts = transcriptions.get(form_id)
        if texts is None:
            report.skip("no transcription file for its form")
            continue
        if not 1 <= number <= len(texts):
            report.skip("form has fewer transcribed lines than its line number")
            continue
        try:
            points = parse_line_strokes(content)
        except (ET.ParseError, ValueError):
            report.skip("unreadable stroke XML")
            continue
        if len(points) < 2:
            report.skip("fewer than two points")
            continue
        lines.append(RawLine(line_id, texts[number - 1], points))
        report.lines_read += 1
    if not lines:
        raise DataFolderError(f"no IAM-OnDB lines found in {folder}")
    return lines


def read_splits(folder: str | Path) -> dict[str, set[str]]:
    """The IAM-OnDB-t1 split files present in the folder (name -> form ids)."""
    folder = Path(folder).expanduser()
    return {name: read_split_file(folder / f"{name}.txt") for name in SPLIT_FILES if (folder / f"{name}.txt").exists()}
