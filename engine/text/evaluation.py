"""Bits and nats per character on held-out text, evaluated continuously: one stream through the whole
text, the hidden state carried from chunk to chunk (so every character sees all the text before it).

The first character has no context and is not scored: ``chars`` is len(text) - 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from engine.text.model import TextNet


@dataclass
class TextScore:
    nats: float  # total
    chars: int

    @property
    def nats_per_char(self) -> float:
        return self.nats / max(self.chars, 1)

    @property
    def bpc(self) -> float:
        return self.nats_per_char / math.log(2)

    def summary_line(self) -> str:
        return f"bpc={self.bpc:.4f} nats_per_char={self.nats_per_char:.4f} chars={self.chars}"


@torch.no_grad()
def score_ids(net: TextNet, ids: np.ndarray, chunk: int = 1000, limit: int | None = None) -> TextScore:
    net.eval()
    ids = torch.as_tensor(np.asarray(ids[: limit + 1] if limit else ids), dtype=torch.int64)
    state = net.initial_state(1)
    total, count = 0.0, 0
    for start in range(0, len(ids) - 1, chunk):
        x = ids[start : start + chunk]
        y = ids[start + 1 : start + chunk + 1]
        x = x[: len(y)]
        logits, state = net(x.unsqueeze(0), state)
        total += float(F.cross_entropy(logits[0].double(), y, reduction="sum"))
        count += len(y)
    return TextScore(total, count)


def evaluate_text(model_path, corpus_path, chunk: int = 1000) -> TextScore:
    """Score a model file on the held-out last 10% of a corpus file."""
    from engine.text.data import held_out_text
    from engine.text.model import build_text_network
    from engine.text.model_file import load_text_model

    model = load_text_model(model_path)
    net = build_text_network(model.weights, model.config)
    return score_ids(net, model.vocab.encode(held_out_text(corpus_path)), chunk)
