"""Text corpora: a file -> its character vocabulary and train / validation / test slices.

The held-out test text is the LAST 10% of the file (as in the paper's Wikipedia experiment); the
validation slice (for choosing the best model during training) is the 5% just before it; the model
trains on the first 85% (or the first 90%, validation included, with ``penwright train text
--train-on-validation``: nanoGPT's split, which its Shakespeare score is measured on). The vocabulary
is every character of the file, in code point order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

TEST_FRACTION = 0.10
VALIDATION_FRACTION = 0.05


class UnknownCharacters(ValueError):
    """Text holds characters outside a model's vocabulary; the message names them."""


@dataclass
class Vocabulary:
    chars: str

    def __post_init__(self):
        if len(set(self.chars)) != len(self.chars):
            raise ValueError("a vocabulary lists each character once")
        self.index = {ch: i for i, ch in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    @classmethod
    def from_text(cls, text: str) -> Vocabulary:
        return cls("".join(sorted(set(text))))

    def unknown(self, text: str) -> list[str]:
        return sorted({ch for ch in text if ch not in self.index})

    def encode(self, text: str) -> np.ndarray:
        missing = self.unknown(text)
        if missing:
            shown = ", ".join(repr(ch) for ch in missing[:20]) + (" ..." if len(missing) > 20 else "")
            raise UnknownCharacters(f"the text has characters the model does not know: {shown}")
        return np.fromiter((self.index[ch] for ch in text), dtype=np.int64, count=len(text))

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)

    def to_dict(self) -> dict:
        return {"chars": self.chars}

    @classmethod
    def from_dict(cls, data: dict) -> Vocabulary:
        return cls(data["chars"])


@dataclass
class TextCorpus:
    vocab: Vocabulary
    train: np.ndarray  # int64 character indices
    validation: np.ndarray
    test: np.ndarray
    source: str = ""

    def summary(self) -> dict:
        return {
            "source": self.source,
            "vocab_size": len(self.vocab),
            "train_chars": len(self.train),
            "validation_chars": len(self.validation),
            "test_chars": len(self.test),
        }

    def with_validation_trained(self) -> TextCorpus:
        """The same corpus training on its validation slice too: the first 90%, as nanoGPT's split trains on.
        Nothing is left to validate on; the held-out last 10% is unchanged."""
        return TextCorpus(
            self.vocab, np.concatenate([self.train, self.validation]), self.validation[:0], self.test, self.source
        )


def split_text(text: str, vocab: Vocabulary | None = None, source: str = "") -> TextCorpus:
    if len(text) < 100:
        raise ValueError(f"a text corpus needs at least 100 characters ({source or 'text'} has {len(text)})")
    vocab = vocab or Vocabulary.from_text(text)
    ids = vocab.encode(text)
    n = len(ids)
    test_start = n - int(round(n * TEST_FRACTION))
    val_start = test_start - int(round(n * VALIDATION_FRACTION))
    return TextCorpus(vocab, ids[:val_start], ids[val_start:test_start], ids[test_start:], source)


def read_text(path: str | Path) -> str:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"corpus file {path} does not exist")
    return path.read_text(encoding="utf-8")


def load_corpus(path: str | Path, vocab: Vocabulary | None = None) -> TextCorpus:
    return split_text(read_text(path), vocab, str(path))


def held_out_text(path: str | Path) -> str:
    """The last 10% of a corpus file: what `penwright eval text` scores."""
    text = read_text(path)
    return text[len(text) - int(round(len(text) * TEST_FRACTION)) :]
