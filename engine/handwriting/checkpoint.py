"""Model files: the shipped format (numpy .npz, fp16 weights + JSON metadata) and training checkpoints.

A model file needs no torch to read: the ONNX path and tools inspect it with numpy alone.
Metadata holds everything needed to use the weights: config, alphabet, normalisation statistics,
point convention, training summary.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.atomic import atomic_write_bytes

FORMAT = "penwright-handwriting-model"
FORMAT_VERSION = 1


class ModelFileError(ValueError):
    """A model file is missing, corrupt or of another kind; the message says which."""


@dataclass
class ModelFile:
    meta: dict
    weights: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.meta["config"]["kind"]


def save_model_file(path: str | Path, meta: dict, weights: dict[str, np.ndarray], dtype=np.float16) -> None:
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, **meta}
    arrays = {f"w/{name}": np.asarray(value, dtype=dtype) for name, value in weights.items()}
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.array(json.dumps(meta)), **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def load_model_file(path: str | Path) -> ModelFile:
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"model file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            weights = {k[2:]: data[k].astype(np.float32) for k in data.files if k.startswith("w/")}
    except Exception as exc:  # zip, JSON, dtype errors all mean the same thing to a user
        raise ModelFileError(
            f"{path} is not a readable Penwright model file ({exc.__class__.__name__}: {exc})"
        ) from exc
    if not isinstance(meta, dict):
        raise ModelFileError(f"{path} is not a Penwright handwriting model (its metadata is not a JSON object)")
    if meta.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not a Penwright handwriting model (format {meta.get('format')!r})")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise ModelFileError(
            f"{path} was written by a newer Penwright (format {meta['format_version']}); please upgrade"
        )
    for key in ("config", "alphabet", "normalizer", "convention"):
        if key not in meta:
            raise ModelFileError(f"{path} lacks its {key!r} metadata")
    return ModelFile(meta, weights)
