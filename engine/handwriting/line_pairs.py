"""Training sequences of two consecutive lines by one writer, written as one line: teaches priming.

Priming (Graves 2013, section 5.5) feeds the network a person's line and its text, then asks for new text:
the network must carry the writer's style across a join it never saw in training, where every sequence
was one line on its own. Joining each form's lines in pairs (IAM-OnDB forms are written by one person)
shows the network exactly that join: the second line is moved to continue the first on its baseline,
one word space to the right, and the texts are joined with a space, just as the writer joins a prime's
text and the new text.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from engine.handwriting.iam_ondb import RawLine
from engine.handwriting.style_metrics import letter_height
from engine.handwriting.styles import IAM_LETTER_HEIGHT

# The gap between the lines' ink, in letter heights: about one word space in IAM-OnDB.
WORD_GAP_HEIGHTS = 1.0
# The share of a line's points (at its end, at the next line's start) whose median y sets the baselines.
BASELINE_SHARE = 0.2


def _strokes(points: np.ndarray) -> list[np.ndarray]:
    ends = np.flatnonzero(points[:, 2]) + 1
    return [s[:, :2] for s in np.split(points.astype(np.float64), ends) if len(s)]


def join_lines(first: RawLine, second: RawLine) -> RawLine:
    """``second`` moved to continue ``first`` on the same baseline, one word space after its last ink."""
    a = first.points.astype(np.float64)
    b = second.points.astype(np.float64)
    height = letter_height(_strokes(first.points)) or IAM_LETTER_HEIGHT  # flat ink: IAM-OnDB's median
    tail = a[-max(int(len(a) * BASELINE_SHARE), 1) :, 1]
    head = b[: max(int(len(b) * BASELINE_SHARE), 1), 1]
    shift_x = a[:, 0].max() + WORD_GAP_HEIGHTS * height - b[:, 0].min()
    shift_y = np.median(tail) - np.median(head)
    moved = b.copy()
    moved[:, 0] += shift_x
    moved[:, 1] += shift_y
    last = a.copy()
    last[-1, 2] = 1  # the first line's last stroke ends before the jump
    points = np.concatenate([last, moved]).round().astype(first.points.dtype)
    line_id = f"{first.line_id}+{second.line_id.rsplit('-', 1)[1]}"
    return RawLine(line_id, f"{first.text} {second.text}", points, context_points=len(a))


def forms_in_order(lines: list[RawLine]) -> list[list[RawLine]]:
    """The lines grouped by form (forms sorted), each form's lines in reading order."""
    by_form: dict[str, list[RawLine]] = defaultdict(list)
    for line in lines:
        by_form[line.form_id].append(line)
    return [sorted(by_form[form_id], key=lambda ln: ln.line_id) for form_id in sorted(by_form)]


def pair_lines(lines: list[RawLine]) -> list[RawLine]:
    """Each form's lines joined in pairs in reading order (1+2, 3+4, ...); an odd last line stays alone."""
    out: list[RawLine] = []
    for form in forms_in_order(lines):
        for i in range(0, len(form) - 1, 2):
            out.append(join_lines(form[i], form[i + 1]))
        if len(form) % 2:
            out.append(form[-1])
    return out
