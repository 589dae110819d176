"""IAM-OnDB as training and validation sets: parsed once, cached in the user's cache folder."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.atomic import atomic_write_bytes
from engine.handwriting.alphabet import Alphabet
from engine.handwriting.iam_ondb import RawLine, ReadReport, read_iam_ondb, read_splits, split_of
from engine.handwriting.line_pairs import pair_lines
from engine.handwriting.preprocessing import Normalizer, downsample, points_to_offsets
from engine.paths import cache_dir

DATA_ENV = "PENWRIGHT_IAM_ONDB"
CACHE_VERSION = 1
TRAIN_SPLITS = ("trainset", "testset_t", "testset_f")
VALIDATION_SPLIT = "testset_v"


def resolve_data_folder(folder: str | Path | None) -> Path:
    """The IAM-OnDB folder from the argument, else from $PENWRIGHT_IAM_ONDB."""
    chosen = folder or os.environ.get(DATA_ENV)
    if not chosen:
        raise ValueError(f"no IAM-OnDB folder given: pass --data DIR or set {DATA_ENV}")
    return Path(chosen).expanduser().resolve()


def _fingerprint(folder: Path) -> str:
    """Identifies the folder's contents: archives by size and mtime, unpacked trees file by file."""
    parts = [str(CACHE_VERSION), str(folder)]
    for path in sorted(folder.iterdir()):
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            stat = file.stat()
            parts.append(f"{file.relative_to(folder)}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def load_lines(folder: str | Path | None, use_cache: bool = True) -> tuple[list[RawLine], ReadReport]:
    """All readable lines of the folder; parsed XML is cached so later runs start in a second."""
    folder = resolve_data_folder(folder)
    cache = cache_dir() / f"iam-ondb-{_fingerprint(folder)}.npz"
    if use_cache and cache.exists():
        with np.load(cache, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            bounds = np.concatenate([[0], np.cumsum(data["lengths"])])
            points = data["points"]
            lines = [
                RawLine(line_id, text, points[bounds[i] : bounds[i + 1]])
                for i, (line_id, text) in enumerate(zip(meta["ids"], meta["texts"], strict=True))
            ]
        report = ReadReport(meta["lines_read"])
        report.skipped.update(meta["skipped"])
        return lines, report
    report = ReadReport()
    lines = read_iam_ondb(folder, report)
    if use_cache:
        meta = {
            "ids": [ln.line_id for ln in lines],
            "texts": [ln.text for ln in lines],
            "lines_read": report.lines_read,
            "skipped": dict(report.skipped),
        }
        import io

        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            meta=np.array(json.dumps(meta)),
            lengths=np.array([len(ln.points) for ln in lines], np.int64),
            points=np.concatenate([ln.points for ln in lines]),
        )
        atomic_write_bytes(cache, buffer.getvalue())
    return lines, report


@dataclass
class Sequences:
    """Normalised offset sequences with their encoded texts."""

    ids: list[str]
    texts: list[str]
    strokes: list[np.ndarray]  # each (T, 3) float32, normalised
    chars: list[np.ndarray]  # each (U,) int64
    # per sequence: its first steps that are a joined pair's first line (the context the rest continues), or 0
    context: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def points(self) -> int:
        return int(sum(len(s) for s in self.strokes))


@dataclass
class HandwritingData:
    train: Sequences
    validation: Sequences
    alphabet: Alphabet
    normalizer: Normalizer
    convention: str
    report: ReadReport
    split_counts: dict[str, int] = field(default_factory=dict)


def build_sequences(
    lines: list[RawLine], convention: str, alphabet: Alphabet, normalizer: Normalizer, report: ReadReport | None = None
) -> Sequences:
    seqs = Sequences([], [], [], [])
    for line in lines:
        if alphabet.unknown(line.text):
            if report is not None:
                report.skip("text has characters outside the alphabet (e.g. '#', a crossed-out word)")
            continue
        offsets = points_to_offsets(line.points, convention)
        seqs.ids.append(line.line_id)
        seqs.texts.append(line.text)
        seqs.strokes.append(normalizer.normalize(offsets))
        seqs.chars.append(alphabet.encode(line.text))
        # the first line ends a stroke, so its points downsample alike alone or joined: N points, N - 1 steps
        first = downsample(line.points[: line.context_points], convention) if line.context_points else ()
        seqs.context.append(max(len(first) - 1, 0))
    return seqs


def load_handwriting_data(
    folder: str | Path | None,
    convention: str,
    alphabet: Alphabet | None = None,
    normalizer: Normalizer | None = None,
    use_cache: bool = True,
    pair_train_lines: bool = False,
    keep_single_lines: bool = False,
) -> HandwritingData:
    """Training lines (trainset + testset_t [+ testset_f]) and validation lines (testset_v).

    ``pair_train_lines``: each form's training lines are joined in pairs (engine.handwriting.line_pairs),
    so that the network learns to carry a writer's style from one line into the next, as priming needs;
    ``keep_single_lines`` trains on the single lines as well (line starts stay as common as before).
    Validation lines stay single.

    Without split files, the folder's lines are split 90/10 by form id so that writers rarely straddle.
    Alphabet and normaliser come from the training lines unless given (a resumed model keeps its own).
    """
    folder = resolve_data_folder(folder)
    lines, report = load_lines(folder, use_cache)
    splits = read_splits(folder)
    train_raw: list[RawLine] = []
    val_raw: list[RawLine] = []
    counts: dict[str, int] = {}
    for line in lines:
        if splits:
            name = split_of(line.form_id, splits)
            if name is None:
                report.skip("form is in none of the split files")
                continue
        else:
            digest = hashlib.md5(line.form_id.encode()).digest()[0]
            name = VALIDATION_SPLIT if digest < 26 else "trainset"
        counts[name] = counts.get(name, 0) + 1
        (val_raw if name == VALIDATION_SPLIT else train_raw).append(line)
    if alphabet is None:
        alphabet = Alphabet.from_texts(line.text for line in train_raw)
    if normalizer is None:
        normalizer = Normalizer.fit([points_to_offsets(line.points, convention) for line in train_raw])
    if pair_train_lines:
        train_raw = pair_lines(train_raw) + (train_raw if keep_single_lines else [])
    train = build_sequences(train_raw, convention, alphabet, normalizer, report)
    validation = build_sequences(val_raw, convention, alphabet, normalizer, report)
    return HandwritingData(train, validation, alphabet, normalizer, convention, report, counts)


def save_compact_data(data: HandwritingData, path: str | Path) -> None:
    """Normalised sequences in fp16 with their texts: a small file a GPU machine can train from."""
    import io

    def pack(seqs: Sequences, prefix: str) -> dict:
        return {
            f"{prefix}_strokes": np.concatenate(seqs.strokes).astype(np.float16),
            f"{prefix}_lengths": np.array([len(s) for s in seqs.strokes], np.int64),
            f"{prefix}_chars": np.concatenate(seqs.chars).astype(np.int16),
            f"{prefix}_char_lengths": np.array([len(c) for c in seqs.chars], np.int64),
        }

    meta = {
        "alphabet": data.alphabet.to_dict(),
        "normalizer": data.normalizer.to_dict(),
        "convention": data.convention,
        "report": data.report.summary(),
        "splits": data.split_counts,
        "train_ids": data.train.ids,
        "validation_ids": data.validation.ids,
        "train_texts": data.train.texts,
        "validation_texts": data.validation.texts,
    }
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer, meta=np.array(json.dumps(meta)), **pack(data.train, "train"), **pack(data.validation, "validation")
    )
    atomic_write_bytes(path, buffer.getvalue())


def load_compact_data(path: str | Path) -> HandwritingData:
    from engine.handwriting.preprocessing import Normalizer as _Normalizer

    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))

        def unpack(prefix: str) -> Sequences:
            sb = np.concatenate([[0], np.cumsum(data[f"{prefix}_lengths"])])
            cb = np.concatenate([[0], np.cumsum(data[f"{prefix}_char_lengths"])])
            strokes, chars = data[f"{prefix}_strokes"].astype(np.float32), data[f"{prefix}_chars"].astype(np.int64)
            n = len(sb) - 1
            return Sequences(
                meta[f"{prefix}_ids"],
                meta[f"{prefix}_texts"],
                [strokes[sb[i] : sb[i + 1]] for i in range(n)],
                [chars[cb[i] : cb[i + 1]] for i in range(n)],
            )

        train, validation = unpack("train"), unpack("validation")
    report = ReadReport(len(train) + len(validation))
    return HandwritingData(
        train,
        validation,
        Alphabet.from_dict(meta["alphabet"]),
        _Normalizer.from_dict(meta["normalizer"]),
        meta["convention"],
        report,
        meta["splits"],
    )
