"""Bits and nats per character on held-out text, evaluated continuously: one stream through the whole
text, the hidden state carried from chunk to chunk (so every character sees all the text before it).

The first character has no context and is not scored: ``chars`` is len(text) - 1.

Dynamic evaluation (Graves 2013, section 3.2; Krause et al. 2017, "Dynamic Evaluation of Neural Sequence
Models") reads the text the same way but lets the network adapt to it as it goes: each segment is scored
first, then a copy of the network takes one gradient step on that already-scored segment, so later text is
predicted by weights fitted to the text before it. No character is ever scored after training on it.
"""

from __future__ import annotations

import copy
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
    device = next(net.parameters()).device  # a network training on a GPU is scored there
    ids = torch.as_tensor(np.asarray(ids[: limit + 1] if limit else ids), dtype=torch.int64, device=device)
    state = net.initial_state(1, device)
    total, count = 0.0, 0
    for start in range(0, len(ids) - 1, chunk):
        x = ids[start : start + chunk]
        y = ids[start + 1 : start + chunk + 1]
        x = x[: len(y)]
        logits, state = net(x.unsqueeze(0), state)
        total += float(F.cross_entropy(logits[0].double(), y, reduction="sum"))
        count += len(y)
    return TextScore(total, count)


DYNAMIC_RULES = ("sgd", "rms")
DEFAULT_DYNAMIC_SEGMENT = 50
# chosen on the validation slices of both shipped models (tiny-shakespeare, IAM-OnDB transcriptions): the rms
# rule beat clipped SGD on both; lr 3e-4, 50-character segments and decay 1e-3 scored best
DEFAULT_DYNAMIC_RULE = "rms"
DEFAULT_DYNAMIC_LR = {"sgd": 0.1, "rms": 3e-4}
DEFAULT_DYNAMIC_DECAY = 1e-3


def dynamic_score_ids(
    net: TextNet,
    ids: np.ndarray,
    segment: int = DEFAULT_DYNAMIC_SEGMENT,
    lr: float | None = None,
    rule: str = DEFAULT_DYNAMIC_RULE,
    clip: float = 1.0,
    decay: float = DEFAULT_DYNAMIC_DECAY,
    beta: float = 0.99,
    eps: float = 1e-8,
    limit: int | None = None,
    partial: list[float] | None = None,
) -> TextScore:
    """Dynamic evaluation: score ``ids`` in segments of ``segment`` characters, state carried, and after
    scoring each segment take one gradient step on that segment's mean loss (state detached between segments).

    Why: a text repeats its own names, words and style; adapting to what has been read predicts what follows
    better (Graves 2013 reports his Wikipedia figures this way). Scoring comes before the step, so no
    character is scored by weights that saw it. Dropout is off throughout. ``net`` is not changed: a copy adapts.

    Update rules (``lr`` defaults per rule):
      - ``sgd``: theta -= lr * g, g the mean-per-character gradient with its global norm clipped to ``clip``.
      - ``rms``: RMSprop over the text read so far (Krause et al.'s RMS-normalised step, with the mean square
        accumulated on the evaluation text itself rather than on training data):
        ms = beta * ms + (1 - beta) * g^2 (bias-corrected); theta -= lr * g / (sqrt(ms) + eps)
        + decay * (theta0 - theta), a global decay back to the original weights (``decay`` is for this rule).
    ``partial``, when a list, receives the running total nats after each segment.
    """
    if rule not in DYNAMIC_RULES:
        raise ValueError(f"unknown dynamic evaluation rule {rule!r} (one of {', '.join(DYNAMIC_RULES)})")
    if segment <= 0:
        raise ValueError("the dynamic evaluation segment must be at least 1 character")
    lr = DEFAULT_DYNAMIC_LR[rule] if lr is None else lr
    model = copy.deepcopy(net).eval()  # eval: dropout off while scoring and adapting
    params = list(model.parameters())
    for p in params:
        p.requires_grad_(True)
    originals = [p.detach().clone() for p in params]
    mean_sq = [torch.zeros_like(p) for p in params]
    ids = torch.as_tensor(np.asarray(ids[: limit + 1] if limit else ids), dtype=torch.int64)
    state = model.initial_state(1)
    total, count = 0.0, 0
    for steps, start in enumerate(range(0, len(ids) - 1, segment), 1):
        x = ids[start : start + segment]
        y = ids[start + 1 : start + segment + 1]
        x = x[: len(y)]
        with torch.no_grad():  # scored first, exactly as score_ids does (the same kernels)
            logits, new_state = model(x.unsqueeze(0), state)
            total += float(F.cross_entropy(logits[0].double(), y, reduction="sum"))
        count += len(y)
        if partial is not None:
            partial.append(total)
        for p in params:
            p.grad = None
        logits, _ = model(x.unsqueeze(0), state)  # then adapt on the segment just scored
        F.cross_entropy(logits[0], y).backward()
        state = new_state
        with torch.no_grad():
            grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
            if rule == "sgd":
                norm = math.sqrt(sum(float((g.double() ** 2).sum()) for g in grads))
                scale = min(1.0, clip / (norm + 1e-12)) if clip > 0 else 1.0
                for p, g in zip(params, grads, strict=True):
                    p.sub_(lr * scale * g)
            else:
                correction = 1.0 - beta**steps
                for p, g, ms, p0 in zip(params, grads, mean_sq, originals, strict=True):
                    ms.mul_(beta).addcmul_(g, g, value=1.0 - beta)
                    p.sub_(lr * g / (torch.sqrt(ms / correction) + eps))
                    p.add_(decay * (p0 - p))
    return TextScore(total, count)


def evaluate_text(
    model_path,
    corpus_path,
    chunk: int = 1000,
    dynamic: bool = False,
    segment: int = DEFAULT_DYNAMIC_SEGMENT,
    lr: float | None = None,
    rule: str = DEFAULT_DYNAMIC_RULE,
    **dynamic_options,
) -> TextScore:
    """Score a model file on the held-out last 10% of a corpus file; ``dynamic``: with dynamic evaluation
    (``segment``, ``lr``, ``rule`` and further options as in ``dynamic_score_ids``)."""
    from engine.text.data import held_out_text
    from engine.text.model import build_text_network
    from engine.text.model_file import load_text_model

    model = load_text_model(model_path)
    net = build_text_network(model.weights, model.config)
    ids = model.vocab.encode(held_out_text(corpus_path))
    if dynamic:
        return dynamic_score_ids(net, ids, segment=segment, lr=lr, rule=rule, **dynamic_options)
    return score_ids(net, ids, chunk)
