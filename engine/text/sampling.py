"""Sampling text from a text network: one numpy Generator outside the network draws every character,
so a seed fixes the text whichever backend (torch or ONNX Runtime) runs the steps.

A stepper offers ``initial_state(batch)`` and ``step(x (B,), state) -> (logits (B, V), state)``.
Priming feeds the prime text first; without one the network starts from a newline (or the vocabulary's
first character when there is no newline), which is not part of the output.
"""

from __future__ import annotations

import numpy as np

from engine.text.data import Vocabulary


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    if temperature <= 0:
        raise ValueError("the temperature must be above 0")
    z = np.asarray(logits, np.float64) / temperature
    z -= z.max(axis=-1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=-1, keepdims=True)


def draw(probs: np.ndarray, rng: np.random.Generator) -> int:
    """One index from a probability vector (inverse CDF of one uniform: the same in every backend)."""
    cdf = np.cumsum(probs)
    return int(min(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"), len(probs) - 1))


def sample_text(
    stepper,
    vocab: Vocabulary,
    chars: int,
    prime: str = "",
    temperature: float = 1.0,
    seed: int | None = None,
    rng: np.random.Generator | None = None,
) -> str:
    """``chars`` sampled characters following ``prime`` (the prime is not repeated)."""
    rng = rng if rng is not None else np.random.default_rng(seed)
    start = prime or ("\n" if "\n" in vocab.index else vocab.chars[0])
    ids = vocab.encode(start)  # raises UnknownCharacters naming any unknown ones
    state = stepper.initial_state(1)
    logits = None
    for i in ids:
        logits, state = stepper.step(np.array([i], np.int64), state)
    out = []
    for _ in range(chars):
        k = draw(softmax(logits[0], temperature), rng)
        out.append(k)
        logits, state = stepper.step(np.array([k], np.int64), state)
    return vocab.decode(out)
