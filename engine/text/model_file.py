"""Text model files: numpy .npz with fp16 weights and JSON metadata (vocabulary, config, training
summary); readable without torch."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.model_npz import ModelFileError as ModelFileError  # callers import it from here
from engine.model_npz import read_model_npz, write_model_npz
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
    write_model_npz(path, FORMAT, FORMAT_VERSION, meta, weights, dtype)


def load_text_model(path: str | Path) -> TextModelFile:
    hint = " (train one with `penwright train text`)"
    meta, weights = read_model_npz(path, FORMAT, FORMAT_VERSION, "text model", ("config", "vocabulary"), hint)
    return TextModelFile(meta, weights)
