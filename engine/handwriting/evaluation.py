"""Evaluate a handwriting model's NLL on IAM-OnDB lines (what `penwright eval handwriting` does).

NLL is measured under the model's own point convention, with offsets normalised by the model's stored
statistics; only convention ``paper`` (one step per recorded point) is comparable with Graves (2013).

``pair_lines``: what priming asks of a network, scored on real writers. Each form's lines are joined in pairs
as in training (engine.handwriting.line_pairs) and only the SECOND line's points count: the NLL of a writer's
line given their previous line and both texts (teacher-forced), per second line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.handwriting.alphabet import Alphabet
from engine.handwriting.checkpoint import load_model_file
from engine.handwriting.dataset import load_lines, resolve_data_folder
from engine.handwriting.iam_ondb import read_split_file, split_of
from engine.handwriting.preprocessing import Normalizer, points_to_offsets


@dataclass
class EvalResult:
    nll_per_line: float
    nll_per_point: float
    lines: int
    points: int
    skipped: int
    convention: str

    def summary_line(self) -> str:
        return (
            f"nll_per_line={self.nll_per_line:.2f} nll_per_point={self.nll_per_point:.4f} lines={self.lines} "
            f"points={self.points} skipped={self.skipped} convention={self.convention}"
        )


def evaluate(
    model_path: str | Path,
    data: str | Path | None,
    split_file: str | Path | None = None,
    limit: int | None = None,
    batch_size: int = 32,
    device: str = "cpu",
    pair_lines: bool = False,
    lines_with: str | None = None,
) -> EvalResult:
    """Mean NLL over the split's lines. ``lines_with``: only lines holding at least one of these characters
    (e.g. the rare "zqjx0123456789"), chosen before ``limit`` and before lines are paired."""
    import torch

    from engine.backends.torch_backend import build_network
    from engine.handwriting.dataset import Sequences
    from engine.handwriting.model import mixture_nll
    from engine.handwriting.training import collate

    model = load_model_file(model_path)
    alphabet = Alphabet.from_dict(model.meta["alphabet"])
    normalizer = Normalizer.from_dict(model.meta["normalizer"])
    convention = model.meta["convention"]
    folder = resolve_data_folder(data)
    if split_file is None:
        split_file = folder / "testset_v.txt"
    forms = read_split_file(Path(split_file))
    lines, _ = load_lines(folder)
    chosen = sorted((ln for ln in lines if split_of(ln.form_id, {"split": forms})), key=lambda ln: ln.line_id)
    if lines_with:
        chosen = [ln for ln in chosen if any(c in ln.text for c in lines_with)]
    if limit is not None:
        chosen = chosen[:limit]
    skipped = 0
    firsts: dict[str, int] = {}  # pair id -> steps of its first line (not scored)
    if pair_lines:
        from engine.handwriting.line_pairs import forms_in_order, join_lines

        usable = [ln for ln in chosen if not alphabet.unknown(ln.text)]
        skipped = len(chosen) - len(usable)
        chosen = []
        for form in forms_in_order(usable):  # pairs as in training: 1+2, 3+4, ...
            for first, second in zip(form[0::2], form[1::2], strict=False):
                joined = join_lines(first, second)
                firsts[joined.line_id] = len(points_to_offsets(joined.points[: len(first.points)], convention))
                chosen.append(joined)
    seqs = Sequences([], [], [], [])
    for line in chosen:
        if alphabet.unknown(line.text):
            skipped += 1
            continue
        seqs.ids.append(line.line_id)
        seqs.texts.append(line.text)
        seqs.strokes.append(normalizer.normalize(points_to_offsets(line.points, convention)))
        seqs.chars.append(alphabet.encode(line.text))
    if not seqs.ids:
        raise ValueError("no lines to evaluate (check the split file and --limit; pairs need two lines a form)")
    net = build_network(model, device)
    order = np.argsort([len(s) for s in seqs.strokes])
    total, points = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            batch = collate(seqs, index).to(torch.device(device))
            for b, i in enumerate(index):  # pairs: the first line is the prime, not scored
                batch.mask[b, : firsts.get(seqs.ids[i], 0)] = 0
            y, _, _ = net(batch.inputs, batch.chars)
            total += float(mixture_nll(y, batch.targets, batch.mask, net.config.mixtures).sum())
            points += int(batch.mask.sum())
    return EvalResult(total / len(seqs.ids), total / points, len(seqs.ids), points, skipped, convention)
