"""Text model files: numpy .npz with fp16 weights and JSON metadata (vocabulary, config, training
summary); readable without torch."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.atomic import atomic_write_bytes
from engine.handwriting.checkpoint import ModelFileError
from engine.text.data import Vocabulary

FORMAT = "penwright-text-model"
FORMAT_VERSION = 1


@dataclass
class TextModelFile:
    meta: dict
    weights: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def vocab(self) -> Vocabulary:
        return Vocabulary.from_dict(self.meta["vocabulary"])

    @property
    def config(self):
        from engine.text.model import TextConfig  # needs torch

        return TextConfig.from_dict(self.meta["config"])


def save_text_model(path: str | Path, meta: dict, weights: dict[str, np.ndarray], dtype=np.float16) -> None:
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, **meta}
    arrays = {f"w/{name}": np.asarray(value, dtype=dtype) for name, value in weights.items()}
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.array(json.dumps(meta)), **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def load_text_model(path: str | Path) -> TextModelFile:
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"text model file {path} does not exist (train one with `penwright train text`)")
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            weights = {k[2:]: data[k].astype(np.float32) for k in data.files if k.startswith("w/")}
    except Exception as exc:
        raise ModelFileError(
            f"{path} is not a readable Penwright model file ({exc.__class__.__name__}: {exc})"
        ) from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not a Penwright text model (format {meta.get('format')!r})")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise ModelFileError(
            f"{path} was written by a newer Penwright (format {meta['format_version']}); please upgrade"
        )
    for key in ("config", "vocabulary"):
        if key not in meta:
            raise ModelFileError(f"{path} lacks its {key!r} metadata")
    return TextModelFile(meta, weights)
