"""The characters a handwriting model can write, and how user text is mapped onto them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

# IAM marks a crossed-out word with '#': its strokes are a scribble, not a character to learn.
EXCLUDED_CHARACTERS = "#"
# Characters seen on fewer training lines than this are listed as rare: writing them gives a warning.
RARE_LINE_COUNT = 20

# Pasted typography mapped to what the model writes (IAM transcriptions are plain ASCII).
TYPOGRAPHY = {
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": "'",
    "\u2032": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u2033": '"',
    "\u00ab": '"',
    "\u00bb": '"',
    "\u2013": "-",
    "\u2014": "-",
    "\u2212": "-",
    "\u2010": "-",
    "\u2011": "-",
    "\u2026": "...",
    "\u00a0": " ",
    "\u2009": " ",
    "\u202f": " ",
    "\u2002": " ",
    "\u2003": " ",
    "\t": " ",
}


class UnknownCharactersError(ValueError):
    """The text holds characters the model cannot write; the message names them."""

    def __init__(self, characters: Iterable[str]):
        self.characters = sorted(set(characters))
        shown = ", ".join(repr(c) for c in self.characters)
        super().__init__(f"the handwriting model cannot write these characters: {shown}")


@dataclass
class PreparedText:
    text: str
    notices: list[str]


@dataclass
class Alphabet:
    characters: str
    rare: str = ""

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> Alphabet:
        lines_with = Counter()
        for text in texts:
            lines_with.update(set(text))
        chars = sorted(c for c in lines_with if c not in EXCLUDED_CHARACTERS)
        rare = "".join(c for c in chars if lines_with[c] < RARE_LINE_COUNT)
        return cls("".join(chars), rare)

    def __len__(self) -> int:
        return len(self.characters)

    def __contains__(self, char: str) -> bool:
        return char in self._index

    def __post_init__(self) -> None:
        self._index = {c: i for i, c in enumerate(self.characters)}

    def unknown(self, text: str) -> set[str]:
        return {c for c in text if c not in self._index}

    def encode(self, text: str) -> np.ndarray:
        missing = self.unknown(text)
        if missing:
            raise UnknownCharactersError(missing)
        return np.fromiter((self._index[c] for c in text), dtype=np.int64, count=len(text))

    def prepare(self, text: str) -> PreparedText:
        """Map pasted typography, collapse whitespace, and check every character; notices say what changed."""
        notices: list[str] = []
        mapped = "".join(TYPOGRAPHY.get(c, c) for c in text)
        if mapped != text:
            changed = sorted({c for c in text if c in TYPOGRAPHY})
            notices.append("replaced typography with plain characters: " + ", ".join(repr(c) for c in changed))
        collapsed = " ".join(mapped.split())
        if not collapsed:
            raise ValueError("there is no text to write")
        missing = self.unknown(collapsed)
        if missing:
            raise UnknownCharactersError(missing)
        rare = sorted({c for c in collapsed if c in self.rare})
        if rare:
            notices.append(
                "these characters are rare in the training data and may be written poorly: "
                + ", ".join(repr(c) for c in rare)
            )
        return PreparedText(collapsed, notices)

    def to_dict(self) -> dict:
        return {"characters": self.characters, "rare": self.rare}

    @classmethod
    def from_dict(cls, data: dict) -> Alphabet:
        return cls(data["characters"], data.get("rare", ""))
