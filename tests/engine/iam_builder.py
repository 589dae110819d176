"""A small IAM-OnDB look-alike built inside a test: archives (or unpacked trees) in the owners' layout.

Every line is chosen to exercise one path of the reader; ``EXPECTED_*`` say what a correct reader makes of it.
"""

from __future__ import annotations

import io
import tarfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Transcriptions per form (the lines after CSR:). Texts use the tiny model's alphabet "abc " except where noted.
FORMS = {
    "a01-000u": ["abc ab", "ca b", "a # b"],  # line 3 has a crossed-out word
    "a01-000x": ["bca", "cc a", "ab", "ba"],
    "a04-010u": ["ba c"],
    "a02-050": ["ab ca", "abc", "dab"],  # 'd' is outside the training alphabet
    "c03-007": ["abc"],  # a form in none of the split files
}
# Line files: line id -> what its XML holds.
LINE_FILES = {
    "a01-000u-01": "ok",
    "a01-000u-02": "ok",
    "a01-000u-03": "ok",
    "a01-000u-04": "ok",  # the form has only 3 transcribed lines
    "a01-000x-01": "ok",
    "a01-000x-02": "empty-stroke",  # an empty <Stroke/> among real ones
    "a01-000x-03": "malformed",
    "a01-000x-04": "one-point",
    "a04-010u-01": "ok",
    "a02-050-01": "ok",
    "a02-050-02": "ok",  # blacklisted
    "a02-050-03": "ok",
    "b01-001-01": "ok",  # no ascii file for form b01-001
    "c03-007-01": "ok",
}
EXTRA_XML = "lineStrokes/notes.xml"  # not a line id
SPLITS = {"trainset": [" a01-000", ""], "testset_t": ["a04-010u"], "testset_v": ["a02-050 "]}
BLACKLIST = ["a02-050-02"]

EXPECTED_READ = {
    "a01-000u-01",
    "a01-000u-02",
    "a01-000u-03",
    "a01-000x-01",
    "a01-000x-02",
    "a04-010u-01",
    "a02-050-01",
    "a02-050-03",
    "c03-007-01",
}
# substring of the reason -> count
EXPECTED_READ_SKIPS = {
    "blacklisted": 1,
    "no transcription file": 1,
    "fewer transcribed lines": 1,
    "unreadable stroke XML": 1,
    "fewer than two points": 1,
    "not a line id": 1,
}
EXPECTED_SPLIT_COUNTS = {"trainset": 5, "testset_t": 1, "testset_v": 2}
EXPECTED_TRAIN = {"a01-000u-01", "a01-000u-02", "a01-000x-01", "a01-000x-02", "a04-010u-01"}
EXPECTED_VALIDATION = {"a02-050-01"}


def form_of(line_id: str) -> str:
    return line_id.rsplit("-", 1)[0]


def folder_parts(form_id: str) -> tuple[str, str]:
    """('a01', 'a01-000') for form a01-000u: the owners' folder layout."""
    base = form_id[:-1] if form_id[-1].isalpha() else form_id
    return form_id.split("-")[0], base


def random_strokes(rng: np.random.Generator, n_strokes: int | None = None) -> list[np.ndarray]:
    """Integer (x, y-down) strokes, each 1..13 points, moving right like writing."""
    n_strokes = n_strokes or int(rng.integers(2, 5))
    strokes, x = [], int(rng.integers(500, 1500))
    for _ in range(n_strokes):
        n = int(rng.integers(1, 14))
        xs = x + np.cumsum(rng.integers(-5, 30, size=n))
        ys = 1000 + np.cumsum(rng.integers(-40, 41, size=n))
        strokes.append(np.stack([xs, ys], 1).astype(np.int64))
        x = int(xs[-1]) + int(rng.integers(5, 60))
    return strokes


def points_of(strokes: list[np.ndarray]) -> np.ndarray:
    """(N, 3) x, y, end-of-stroke as a correct parser returns them."""
    rows = []
    for stroke in strokes:
        for i, (x, y) in enumerate(stroke):
            rows.append((int(x), int(y), int(i == len(stroke) - 1)))
    return np.array(rows, dtype=np.int64).reshape(-1, 3)


def stroke_xml(strokes: list[np.ndarray], empty_stroke: bool = False) -> bytes:
    out = ['<?xml version="1.0" encoding="ISO-8859-1"?>', "<WhiteboardCaptureSession>", "  <WhiteboardDescription>"]
    out += ['    <SensorLocation corner="top_left"/>', "  </WhiteboardDescription>", "  <StrokeSet>"]
    t = 100.0
    for k, stroke in enumerate(strokes):
        if empty_stroke and k == 1:
            out.append('    <Stroke colour="black" start_time="1" end_time="1"></Stroke>')
        out.append(f'    <Stroke colour="black" start_time="{t:.2f}" end_time="{t + 1:.2f}">')
        for x, y in stroke:
            out.append(f'      <Point x="{x}" y="{y}" time="{t:.2f}"/>')
            t += 0.01
        out.append("    </Stroke>")
    out += ["  </StrokeSet>", "</WhiteboardCaptureSession>", ""]
    return "\n".join(out).encode("latin-1")


def ascii_file(texts: list[str]) -> bytes:
    """An ascii form file: an OCR section that must be ignored, then CSR: with blank lines between lines."""
    ocr = "OCR:\n\nthis OCR text is not\nthe transcription\n\n"
    csr = "CSR:  \n\n" + "\n".join(f"{t}  " if i % 2 else f"{t}\n" for i, t in enumerate(texts)) + "\n\n"
    return (ocr + csr).encode("latin-1")


@dataclass
class SmallIam:
    folder: Path
    points: dict[str, np.ndarray]  # line id -> expected (N, 3) points (ok lines only)
    strokes: dict[str, list[np.ndarray]]

    def text(self, line_id: str) -> str:
        return FORMS[form_of(line_id)][int(line_id.rsplit("-", 1)[1]) - 1]


def small_iam_members(seed: int = 0) -> tuple[dict[str, bytes], dict[str, bytes], dict, dict]:
    """(lineStrokes members, ascii members, expected points, strokes) as relative path -> bytes."""
    rng = np.random.default_rng(seed)
    line_members: dict[str, bytes] = {}
    points, strokes_of = {}, {}
    for line_id, kind in LINE_FILES.items():
        top, base = folder_parts(form_of(line_id))
        name = f"lineStrokes/{top}/{base}/{line_id}.xml"
        if kind == "malformed":
            line_members[name] = b'<WhiteboardCaptureSession><StrokeSet><Stroke><Point x="1" y='
            continue
        strokes = [np.array([[10, 20]])] if kind == "one-point" else random_strokes(rng)
        line_members[name] = stroke_xml(strokes, empty_stroke=kind == "empty-stroke")
        points[line_id] = points_of(strokes)
        strokes_of[line_id] = strokes
    line_members[EXTRA_XML] = stroke_xml(random_strokes(rng))
    ascii_members = {}
    for form_id, texts in FORMS.items():
        top, base = folder_parts(form_id)
        ascii_members[f"ascii/{top}/{base}/{form_id}.txt"] = ascii_file(texts)
    return line_members, ascii_members, points, strokes_of


def _write_archive(path: Path, members: dict[str, bytes], prefix: str) -> None:
    with tarfile.open(path, "w:gz") as tar:
        folders = sorted({str(Path(name).parent) for name in members})
        for folder in folders:  # directory entries, as real archives have
            info = tarfile.TarInfo(prefix + folder)
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
        for name, content in members.items():
            info = tarfile.TarInfo(prefix + name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))


def build_small_iam(folder: Path, layout: str = "archive", prefix: str = "", splits: bool = True) -> SmallIam:
    """Write the small database into ``folder`` as archives ("archive") or unpacked trees ("tree")."""
    folder.mkdir(parents=True, exist_ok=True)
    line_members, ascii_members, points, strokes = small_iam_members()
    if layout == "archive":
        _write_archive(folder / "lineStrokes-x.tar.gz", line_members, prefix)
        _write_archive(folder / "ascii-x.tar.gz", ascii_members, prefix)
    elif layout == "tree":
        for name, content in {**line_members, **ascii_members}.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(content)
    else:
        raise ValueError(layout)
    if splits:
        for name, ids in SPLITS.items():
            (folder / f"{name}.txt").write_text("\n".join(ids) + "\n")
    (folder / "blacklist.txt").write_text("\n".join(BLACKLIST) + "\n")
    return SmallIam(folder, points, strokes)


def skip_counts(skipped: Counter, expected: dict[str, int]) -> dict[str, int]:
    """Counts of the skip reasons that contain each expected substring (each reason matched once)."""
    return {key: sum(n for reason, n in skipped.items() if key in reason) for key in expected}


def skip2_keep(stroke_lengths: list[int]) -> np.ndarray:
    """Indices a skip2 downsampling keeps: every second point of each stroke plus each stroke's last point."""
    keep, start = [], 0
    for n in stroke_lengths:
        keep.extend(sorted(set(range(start, start + n, 2)) | {start + n - 1}))
        start += n
    return np.array(keep, dtype=np.int64)
