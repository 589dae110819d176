"""The Dream action's background half: the text model invents a sentence (or continues the user's), one
character at a time, for the studio to show as it comes and then write by hand.

The sampling itself is the engine's (``engine.text.dream``); here it becomes a generator job for the
:class:`~desktop.workers.JobRunner`: it yields each character and returns the lines to write.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path

from desktop import settings
from desktop.workers import JobError
from engine.handwriting.alphabet import Alphabet
from engine.text.dream import dream_lines, dream_stream, load_text_stepper, text_model_path


@dataclass(frozen=True)
class DreamedText:
    text: str  # the prime and what the model wrote, as sampled
    lines: list[str]  # what the handwriting model is given
    notices: list[str] = field(default_factory=list)


class TextModelCache:
    """The last text model loaded, kept for the next Dream (loaded and used on the worker thread only)."""

    def __init__(self) -> None:
        self._loaded: tuple[Path, float, object, object] | None = None

    def get(self, path: Path):
        mtime = path.stat().st_mtime
        if self._loaded is None or self._loaded[:2] != (path, mtime):
            model, stepper = load_text_stepper(path)
            self._loaded = (path, mtime, model, stepper)
        return self._loaded[2], self._loaded[3]


def dream_text_job(
    cache: TextModelCache,
    path: Path | None,
    prime: str,
    temperature: float,
    seed: int | None,
    alphabet: Alphabet,
) -> Generator[str, None, DreamedText]:
    """Yield each sampled character; return the text fitted to the handwriting alphabet and wrapped in lines."""
    path = Path(path) if path is not None else text_model_path(settings.text_model())
    if not path.exists():
        raise JobError(
            f"No text model found at {path}. Dream needs a text model: train one with "
            "penwright train text, or choose another in File → Settings."
        )
    try:
        model, stepper = cache.get(path)
    except Exception as exc:  # an unreadable file: say which and why
        raise JobError(f"Could not load the text model {path.name}: {exc}.") from exc
    sampled = []
    for char in dream_stream(stepper, model.vocab, prime, temperature, seed):
        sampled.append(char)
        yield char
    text = (prime + "".join(sampled)).strip()
    lines, notices = dream_lines(text, alphabet)
    if not lines:
        raise JobError("The text model wrote nothing the handwriting model can write; try Dream again.")
    return DreamedText(text, lines, notices)
