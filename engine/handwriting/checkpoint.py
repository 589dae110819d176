"""Model files: the shipped format (numpy .npz, fp16 weights + JSON metadata) and training checkpoints.

A model file needs no torch to read: the ONNX path and tools inspect it with numpy alone.
Metadata holds everything needed to use the weights: config, alphabet, normalisation statistics,
point convention, training summary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.model_npz import ModelFileError as ModelFileError  # callers import it from here
from engine.model_npz import read_model_npz, write_model_npz

FORMAT = "penwright-handwriting-model"
FORMAT_VERSION = 1


@dataclass
class ModelFile:
    meta: dict
    weights: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.meta["config"]["kind"]


def save_model_file(path: str | Path, meta: dict, weights: dict[str, np.ndarray], dtype=np.float16) -> None:
    write_model_npz(path, FORMAT, FORMAT_VERSION, meta, weights, dtype)


def load_model_file(path: str | Path) -> ModelFile:
    required = ("config", "alphabet", "normalizer", "convention")
    return ModelFile(*read_model_npz(path, FORMAT, FORMAT_VERSION, "handwriting model", required))
