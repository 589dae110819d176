"""The container every Penwright model file uses: numpy .npz with weights under ``w/`` (fp16 by default)
and a JSON ``meta`` entry naming the format. Readable with numpy alone (no torch)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from engine.atomic import atomic_write_bytes


class ModelFileError(ValueError):
    """A model file is missing, corrupt or of another kind; the message says which."""


def write_model_npz(
    path: str | Path, fmt: str, version: int, meta: dict, weights: dict[str, np.ndarray], dtype=np.float16
) -> None:
    """Atomically write ``weights`` (cast to ``dtype``) and ``meta`` stamped with the format and version."""
    meta = {"format": fmt, "format_version": version, **meta}
    arrays = {f"w/{name}": np.asarray(value, dtype=dtype) for name, value in weights.items()}
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.array(json.dumps(meta)), **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def read_model_npz(
    path: str | Path, fmt: str, version: int, what: str, required: tuple[str, ...], missing_hint: str = ""
) -> tuple[dict, dict[str, np.ndarray]]:
    """(meta, float32 weights) of a model file of format ``fmt``; ModelFileError says what is wrong.

    ``what`` names the kind for messages ("handwriting model"); ``required``: metadata keys it must have.
    """
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"{what} file {path} does not exist{missing_hint}")
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            weights = {k[2:]: data[k].astype(np.float32) for k in data.files if k.startswith("w/")}
    except Exception as exc:  # zip, JSON, dtype errors all mean the same thing to a user
        raise ModelFileError(
            f"{path} is not a readable Penwright model file ({exc.__class__.__name__}: {exc})"
        ) from exc
    if not isinstance(meta, dict):
        raise ModelFileError(f"{path} is not a Penwright {what} (its metadata is not a JSON object)")
    if meta.get("format") != fmt:
        raise ModelFileError(f"{path} is not a Penwright {what} (format {meta.get('format')!r})")
    if meta.get("format_version", 0) > version:
        raise ModelFileError(
            f"{path} was written by a newer Penwright (format {meta['format_version']}); please upgrade"
        )
    for key in required:
        if key not in meta:
            raise ModelFileError(f"{path} lacks its {key!r} metadata")
    return meta, weights
