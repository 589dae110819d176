"""Shared fixtures: a tiny synthesis model trained in seconds on synthetic strokes (no IAM-OnDB needed)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

SHARED_IAM = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "iam-ondb"


def iam_folder() -> Path | None:
    """IAM-OnDB from $PENWRIGHT_IAM_ONDB, else ../shared/data/iam-ondb beside the checkout."""
    env = os.environ.get("PENWRIGHT_IAM_ONDB")
    for candidate in (Path(env) if env else None, SHARED_IAM):
        if candidate is not None and candidate.is_dir():
            return candidate
    return None


@pytest.fixture(scope="session")
def iam_ondb() -> Path:
    folder = iam_folder()
    if folder is None:
        pytest.skip("IAM-OnDB not found: set PENWRIGHT_IAM_ONDB or place it at ../shared/data/iam-ondb")
    return folder


@pytest.fixture(autouse=True, scope="session")
def _isolated_user_folders(tmp_path_factory) -> None:
    """Tests never touch the real user's cache or data folders."""
    os.environ.setdefault("PENWRIGHT_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    os.environ.setdefault("PENWRIGHT_DATA_DIR", str(tmp_path_factory.mktemp("data")))


def synthetic_sequences(n_lines: int = 24, seed: int = 0):
    """Wavy pen strokes with random texts over a small alphabet: enough to exercise training and sampling."""
    from engine.handwriting.alphabet import Alphabet
    from engine.handwriting.dataset import Sequences
    from engine.handwriting.preprocessing import Normalizer

    rng = np.random.default_rng(seed)
    alphabet = Alphabet("abc ")
    texts, raw = [], []
    for _ in range(n_lines):
        text = "".join(rng.choice(list("abc "), size=rng.integers(3, 7)))
        text = text.strip() or "ab"
        steps = 6 * len(text)
        t = np.arange(steps)
        offsets = np.stack([8 + 4 * np.sin(t / 2.0), 10 * np.cos(t / 2.0), (t % 6 == 5).astype(float)], 1)
        offsets[:, :2] += rng.normal(0, 1, size=(steps, 2))
        texts.append(text)
        raw.append(offsets.astype(np.float32))
    normalizer = Normalizer.fit(raw)
    seqs = Sequences(
        [f"x{i:02d}" for i in range(n_lines)],
        texts,
        [normalizer.normalize(r) for r in raw],
        [alphabet.encode(t) for t in texts],
    )
    return seqs, alphabet, normalizer


def make_tiny_trainer(run_dir: Path, kind: str = "synthesis", seed: int = 0):
    from engine.handwriting.model import ModelConfig
    from engine.handwriting.training import Trainer, TrainSettings

    seqs, alphabet, normalizer = synthetic_sequences()
    config = ModelConfig(
        kind=kind, hidden=16, layers=2, mixtures=3, window=2, alphabet_size=len(alphabet), chars_per_step=1 / 6
    )
    settings = TrainSettings(batch_size=8, seed=seed, validate_lines=8, validate_minutes=1e9, checkpoint_minutes=1e9)
    return Trainer(config, alphabet, normalizer, "skip2", seqs, seqs, run_dir, settings)


@pytest.fixture(scope="session")
def tiny_synthesis_model(tmp_path_factory) -> Path:
    """Path of a shipped-format synthesis model file (hidden 16), trained for a few steps."""
    pytest.importorskip("torch")
    run_dir = tmp_path_factory.mktemp("tiny-synthesis")
    trainer = make_tiny_trainer(run_dir)
    trainer.run(steps=6, progress=False)
    path = run_dir / "tiny-synthesis.npz"
    trainer.export_model(path)
    return path


TINY_TEXT_VOCAB = "\n .Xabc"  # 'X' and '.' are not in the tiny handwriting alphabet: they test mapping and dropping


def make_tiny_text_model(path: Path, hidden: int = 8, layers: int = 2, seed: int = 0) -> Path:
    """A text model file with random weights (no torch, no training): the format and the maths, not the prose.

    The output bias favours letters and spaces and makes '.' common enough that sentences end.
    """
    from engine.text.model_file import save_text_model

    rng = np.random.default_rng(seed)
    V, H = len(TINY_TEXT_VOCAB), hidden
    weights = {}
    for i in range(layers):
        weights[f"lstms.{i}.weight_ih_l0"] = rng.normal(0, 0.5, (4 * H, V + (H if i else 0)))
        weights[f"lstms.{i}.weight_hh_l0"] = rng.normal(0, 0.5, (4 * H, H))
        weights[f"lstms.{i}.bias_ih_l0"] = rng.normal(0, 0.1, 4 * H)
        weights[f"lstms.{i}.bias_hh_l0"] = rng.normal(0, 0.1, 4 * H)
    weights["output.weight"] = rng.normal(0, 0.5, (V, H * layers))
    weights["output.bias"] = np.array([-3.0, 1.0, -0.5, -2.0, 1.5, 1.5, 1.5])
    meta = {
        "config": {"vocab_size": V, "hidden": H, "layers": layers, "dropout": 0.0, "kind": "text"},
        "vocabulary": {"chars": TINY_TEXT_VOCAB},
        "training": {"step": 0, "note": "random weights for tests"},
    }
    save_text_model(path, meta, weights)
    return path


@pytest.fixture(scope="session")
def tiny_text_model_file(tmp_path_factory) -> Path:
    """Path of a tiny text model file (random weights, vocabulary TINY_TEXT_VOCAB)."""
    return make_tiny_text_model(tmp_path_factory.mktemp("tiny-text") / "text-tiny.npz")


@pytest.fixture(scope="session")
def tiny_prediction_model(tmp_path_factory) -> Path:
    """Path of a shipped-format prediction model file (hidden 16), trained for a few steps."""
    pytest.importorskip("torch")
    run_dir = tmp_path_factory.mktemp("tiny-prediction")
    trainer = make_tiny_trainer(run_dir, kind="prediction")
    trainer.run(steps=4, progress=False)
    path = run_dir / "tiny-prediction.npz"
    trainer.export_model(path)
    return path
