"""Drawing handwriting from a trained network, backend-agnostic and reproducible.

The network runs behind a :class:`Stepper` (PyTorch or ONNX Runtime); every random draw comes from one
``numpy.random.Generator`` out here, so the same seed gives the same strokes on any backend.

Bias (Graves 2013, section 5.4): standard deviations are scaled by exp(-b) and mixture weights become a
softmax of (1 + b) times their logits; b = 0 samples the model as trained, larger b writes neater.
Stopping (section 5.2): a line is complete when the window's weight on the position just past the last
character exceeds its weight on every character; we then let the pen finish its current stroke, so the
last letter is not cut off (a pen already lifted ends the line at once: a stroke begun with the window
past the text is not part of it). A length cap tied to the text length stops runaway scribbles.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import numpy as np

from engine.handwriting.preprocessing import CLIP_SENSOR_UNITS, Normalizer


class Stepper(Protocol):
    """One network step at a time. ``chars`` rows are padded with -1; ``state`` is backend-owned."""

    mixtures: int
    synthesis: bool

    def prime(self, inputs: np.ndarray, chars: np.ndarray):
        """Run the network over a priming sequence (T, 3) with its text (U,); returns a batch-1 state."""
        ...

    def start(self, chars: np.ndarray, primed=None):
        """A state for a batch of texts (B, U), continuing from a primed state when given."""
        ...

    def step(self, x: np.ndarray, state) -> tuple[np.ndarray, np.ndarray | None, object]:
        """x (B, 3) float32 -> (raw mixture outputs (B, 1+6M), window weights (B, U) or None, new state)."""
        ...

    def carried(self, state):
        """The network's part of a batch-1 ``state`` (what :meth:`prime` returns and :meth:`start` continues)."""
        ...


class SelectableStepper(Stepper, Protocol):
    """A stepper that can drop finished lines from a batch (optional: ``stream`` uses it when present)."""

    def select(self, state, rows: np.ndarray):
        """The state of the batch rows ``rows`` only (the batch shrinks as lines finish)."""
        ...


class RewindableStepper(Stepper, Protocol):
    """A stepper whose rows' states can be kept and put back (optional: ``stream``'s ``lost_steps`` needs it)."""

    def row_state(self, state, row: int):
        """A copy of batch row ``row``'s network state."""
        ...

    def set_row_state(self, state, row: int, saved):
        """``state`` with row ``row``'s network state replaced by ``saved`` (from :meth:`row_state`)."""
        ...


@dataclass
class MixtureParams:
    eos: np.ndarray  # (B,) probability of lifting the pen
    pi: np.ndarray  # (B, M)
    mu: np.ndarray  # (B, M, 2)
    sigma: np.ndarray  # (B, M, 2)
    rho: np.ndarray  # (B, M)


def mixture_params(y: np.ndarray, mixtures: int, bias: float | np.ndarray = 0.0) -> MixtureParams:
    """Raw outputs -> biased mixture parameters (paper eq. 18-22 with 61-62); ``bias`` one for all rows or (B,)."""
    y = np.asarray(y, dtype=np.float64)
    if np.ndim(bias):
        bias = np.asarray(bias, np.float64).reshape(-1, 1)
    M = mixtures
    e, logit_pi = y[:, 0], y[:, 1 : 1 + M]
    # (B, M, 2) filled in place: the same contiguous arrays np.stack made, without its per-call overhead
    mu = np.empty((y.shape[0], M, 2))
    mu[:, :, 0], mu[:, :, 1] = y[:, 1 + M : 1 + 2 * M], y[:, 1 + 2 * M : 1 + 3 * M]
    log_sigma = np.empty((y.shape[0], M, 2))
    log_sigma[:, :, 0], log_sigma[:, :, 1] = y[:, 1 + 3 * M : 1 + 4 * M], y[:, 1 + 4 * M : 1 + 5 * M]
    rho = np.tanh(y[:, 1 + 5 * M : 1 + 6 * M])
    scaled = logit_pi * (1.0 + bias)
    scaled -= scaled.max(axis=1, keepdims=True)
    pi = np.exp(scaled)
    pi /= pi.sum(axis=1, keepdims=True)
    sigma = np.exp(log_sigma - (bias[:, :, None] if np.ndim(bias) else bias))
    eos = 1.0 / (1.0 + np.exp(-e))
    return MixtureParams(eos, pi, mu, sigma, rho)


def _uniforms(rng: np.random.Generator, rows: np.ndarray | None, batch: int):
    """The draws of one step: (component, end-of-stroke, two normals) per row, made for the whole batch.

    Fixed number of draws per row, in a fixed order: backends stay in lockstep for a given seed, and a line's
    strokes do not depend on which other lines have finished (``rows``: the lines still in the batch).
    """
    u = rng.random(2 * batch)  # the same numbers as two calls of rng.random(batch), in one
    u_component, u_eos = u[:batch], u[batch:]
    normals = rng.standard_normal((batch, 2))
    if rows is not None:
        return u_component[rows], u_eos[rows], normals[rows]
    return u_component, u_eos, normals


def _pick(pi: np.ndarray, u_component: np.ndarray) -> np.ndarray:
    """Mixture component per row, by inverse CDF of one uniform."""
    cdf = pi.cumsum(axis=1)
    return np.minimum((cdf < u_component[:, None] * cdf[:, -1:]).sum(axis=1), pi.shape[1] - 1)


def _offsets(mu_x, mu_y, sigma_x, sigma_y, rho, normals, u_eos, eos) -> np.ndarray:
    out = np.empty((len(mu_x), 3), np.float32)
    out[:, 0] = mu_x + sigma_x * normals[:, 0]
    out[:, 1] = mu_y + sigma_y * (rho * normals[:, 0] + np.sqrt(1 - rho**2) * normals[:, 1])
    out[:, 2] = u_eos < eos
    return out


def _offset_one(row: np.ndarray, k: int, M: int, bias: float, normals: np.ndarray, u_eos: float) -> np.ndarray:
    """``_offsets`` for one row whose component's mean x is at ``row[k]`` (the same double-precision maths)."""
    mu_x, mu_y, ls_x, ls_y, rho_hat, e = (float(v) for v in row[[k, k + M, k + 2 * M, k + 3 * M, k + 4 * M, 0]])
    n0, n1 = float(normals[0]), float(normals[1])
    rho = math.tanh(rho_hat)
    out = np.empty((1, 3), np.float32)
    out[0, 0] = mu_x + _exp(ls_x - bias) * n0
    out[0, 1] = mu_y + _exp(ls_y - bias) * (rho * n0 + math.sqrt(1 - rho**2) * n1)
    out[0, 2] = u_eos < 1.0 / (1.0 + _exp(-e))
    return out


def _exp(v: float) -> float:
    """math.exp that overflows to infinity as numpy does (a damaged network's outputs are caught later)."""
    return math.exp(v) if v < 709.0 else math.inf


def draw(params: MixtureParams, rng: np.random.Generator, rows: np.ndarray | None = None, batch: int = 0) -> np.ndarray:
    """One pen step per row (normalised dx, dy, eos) drawn from the mixture.

    ``rows``: which lines of a batch of ``batch`` the parameters belong to, when finished lines have been
    dropped; the draws are still made for the whole batch so that every line's strokes stay the same.
    """
    B = params.pi.shape[0]
    u_component, u_eos, normals = _uniforms(rng, rows, batch if rows is not None else B)
    k = _pick(params.pi, u_component)
    r = np.arange(B)
    mu, sigma, rho = params.mu[r, k], params.sigma[r, k], params.rho[r, k]
    return _offsets(mu[:, 0], mu[:, 1], sigma[:, 0], sigma[:, 1], rho, normals, u_eos, params.eos)


def sample_points(
    y: np.ndarray,
    mixtures: int,
    bias: float | np.ndarray,
    rng: np.random.Generator,
    rows: np.ndarray | None = None,
    batch: int = 0,
) -> np.ndarray:
    """``draw(mixture_params(y, mixtures, bias), rng, rows, batch)``, the same numbers, but computing the
    Gaussians of the chosen component only: sampling is a third of the time of a step on one stream."""
    y = np.asarray(y, dtype=np.float64)
    B, M = y.shape[0], mixtures
    u_component, u_eos, normals = _uniforms(rng, rows, batch if rows is not None else B)
    if np.ndim(bias):  # one bias per row (B,): the same draws, each row transformed with its own
        bias = float(np.reshape(bias, -1)[0]) if B == 1 else np.asarray(bias, np.float64).reshape(B, 1)
    scaled = y[:, 1 : 1 + M] * (1.0 + bias)
    scaled -= scaled.max(axis=1, keepdims=True)
    pi = np.exp(scaled)
    pi /= pi.sum(axis=1, keepdims=True)
    if B == 1:  # one stream: Python floats for the chosen Gaussian cost a tenth of numpy's tiny-array calls
        return _offset_one(y[0], int(_pick(pi, u_component)[0]) + 1 + M, M, bias, normals[0], float(u_eos[0]))
    # the chosen component's (mu x, mu y, log sigma x, log sigma y, rho) per row, (B, 5), by flat index
    k = _pick(pi, u_component)
    k += np.arange(1 + M, B * y.shape[1], y.shape[1])
    chosen = y.take(k[:, None] + np.arange(0, 5 * M, M))
    sigma = np.exp(chosen[:, 2:4] - bias)
    return _offsets(
        chosen[:, 0],
        chosen[:, 1],
        sigma[:, 0],
        sigma[:, 1],
        np.tanh(chosen[:, 4]),
        normals,
        u_eos,
        1.0 / (1.0 + np.exp(-y[:, 0])),
    )


class _Mark(NamedTuple):
    """Where a line's window reached a new character (``stream``'s ``lost_steps``): what taking the line back there
    puts back."""

    pending: int  # the line's steps not yet streamed, then
    state: object  # its row's network state (the stepper's ``row_state``)
    next_input: np.ndarray  # (3,) the step drawn then: the next input
    taken: int  # the line's steps so far
    furthest: int  # the character reached
    still: int  # the stall count (stall_steps)


@dataclass
class PrimedState:
    """A style's network state after reading its strokes: computed once, reused for every line."""

    state: object  # backend-owned, batch 1
    chars: np.ndarray  # the prime's encoded text (its window positions come first)
    last_input: np.ndarray  # (3,) the prime's last step: the first input when writing continues


def prime_state(stepper: Stepper, prime_inputs: np.ndarray, prime_chars: np.ndarray) -> PrimedState:
    """Read a normalised priming sequence and its text. The window only sees the prime's own text here,
    so the state does not depend on what is written next and one priming serves a whole page."""
    prime_inputs = np.asarray(prime_inputs, np.float32)
    if len(prime_inputs) < 2:
        raise ValueError("a priming sequence needs at least two points")
    if len(prime_chars) == 0:
        raise ValueError("a priming sequence needs its text")
    state = stepper.prime(prime_inputs[:-1], np.asarray(prime_chars, np.int64))
    return PrimedState(state, np.asarray(prime_chars, np.int64), prime_inputs[-1].copy())


def first_focus(stepper: Stepper, primed: PrimedState) -> int:
    """Where the window looks on the first step after ``primed``, counted from the first character written next:
    -1 on the prime's last character (the word space after it), 0 on the next text's first character, more when
    the window has run on past the prime (what follows would then begin with letters skipped). One network step;
    the text that follows does not move the first step's window (only its state does), so the prime's own text
    stands in for it."""
    chars = np.concatenate([primed.chars, primed.chars])
    state = stepper.start(chars[None], primed.state)
    _, phi, _ = stepper.step(np.asarray(primed.last_input, np.float32)[None], state)
    return int(np.argmax(phi[0, : len(chars)])) - len(primed.chars)


@dataclass
class Chunk:
    """Steps produced since the last chunk, per line, in sensor units (dx, dy-up, eos)."""

    offsets: list[np.ndarray]
    done: np.ndarray  # (B,) bool: line finished
    steps: int  # total steps so far
    stopped_by_window: np.ndarray  # (B,) bool: the window's stopping rule fired (not the length cap)
    window: list[np.ndarray] | None = None  # per line (n, U+1) window weights when recorded
    params: list[MixtureParams] | None = None
    # With ``keep_state``, on the last chunk of a one-line batch: the network's state after reading every step
    # but the last (which is ``PrimedState.last_input``): the line need not be read again to continue from it.
    final_state: object | None = None


@dataclass
class GenerationResult:
    offsets: list[np.ndarray]  # per line (T, 3) in sensor units, y up
    stopped_by_window: np.ndarray  # (B,) bool: False where the length cap ended the line
    window: list[np.ndarray] = field(default_factory=list)
    final_state: object | None = None  # see Chunk.final_state


# A pen step shorter than this share of the training data's step spread (about 2.8 sensor units for the shipped
# network, where a step is typically 10-30) all but stands still.
STILL_SHARE = 0.05


def _row(bias: float | np.ndarray, i: int) -> float:
    """Row ``i``'s bias of a step drawn with one bias for all rows or one per row."""
    return bias[i] if np.ndim(bias) else bias


def length_cap(n_chars: int, chars_per_step: float) -> int:
    """Most steps a line of n characters may take: about 2.5 times the training data's pace."""
    return int(np.ceil((n_chars + 1) / max(chars_per_step, 1e-3) * 2.5)) + 20


def stream(
    stepper: Stepper,
    chars: list[np.ndarray],
    normalizer: Normalizer,
    chars_per_step: float,
    bias: float = 0.0,
    rng: np.random.Generator | None = None,
    chunk_steps: int = 16,
    prime_inputs: np.ndarray | None = None,
    prime_chars: np.ndarray | None = None,
    primed: PrimedState | None = None,
    record: bool = False,
    max_steps: int | None = None,
    keep_state: bool = False,
    lookahead: int = 0,
    ends_with_mark: np.ndarray | None = None,
    stall_steps: int = 0,
    lost_steps: int = 0,
    rewinds: int = 4,
) -> Iterator[Chunk]:
    """Generate one line per entry of ``chars`` (encoded text) as a batch, yielding chunks as they come.

    ``primed`` (from :func:`prime_state`), or ``prime_inputs`` (T, 3) normalised strokes with their text
    ``prime_chars``: the network first reads someone's writing and then continues in its style (paper,
    section 5.5); the prime's text comes before each line's text in the window. ``keep_state`` (one line):
    the last chunk carries the network's final state (:attr:`Chunk.final_state`). ``lookahead``: the last so
    many characters of every text are in the window's view but not written: a line ends when the window reaches
    them (as a prime's word space is seen before the next line's text). ``ends_with_mark`` (B,) bool: lines whose
    last character is written in one stroke (a full stop, a comma): such a line ends when the stroke that began
    with the window on that character ends, before the window has moved past it (after a full stop the network
    otherwise often begins a next letter, which the pen would then finish). ``stall_steps`` (0: never): a line
    whose pen has all but stopped for that many steps in a row (each step shorter than ``STILL_SHARE`` of the
    training data's step spread, the pen down) is drawn without bias until the pen moves again -- at a high bias
    the sharpened mixture can keep choosing its "stay" component for hundreds of steps (the pen sits, the
    baseline drifts, the batch waits on that line), which the network's own spread leaves at once.
    ``lost_steps`` (0: never; needs a stepper with ``row_state``): a line whose window has not reached a new
    character for that many steps has lost its way (the pen scribbles, dots and wanders where a letter should be:
    "quartz, judge" as "quart~ ~emy") and is taken back to where its window reached the character it is on, or,
    lost there again, the one before, and drawn anew from there (the next draws differ), at most ``rewinds``
    times a line. The points of those last characters are held back until the window moves on, so what is
    streamed is never taken back.
    """
    if keep_state and len(chars) != 1:
        raise ValueError("keep_state needs a batch of one line")
    if stall_steps < 0 or lost_steps < 0:
        raise ValueError("stall_steps and lost_steps must be 0 (never) or more")
    rng = rng if rng is not None else np.random.default_rng()
    B = len(chars)
    if B == 0:
        return
    if any(len(c) == 0 for c in chars):
        raise ValueError("cannot write an empty line")
    if primed is None and prime_inputs is not None and prime_chars is not None:
        primed = prime_state(stepper, prime_inputs, prime_chars)
    prime_chars = primed.chars if primed is not None else None
    if prime_chars is not None:
        chars = [np.concatenate([prime_chars, c]) for c in chars]
    prime_length = len(prime_chars) if prime_chars is not None else 0
    lengths = np.array([len(c) for c in chars])
    if lookahead < 0 or lengths.min() <= prime_length + lookahead:
        raise ValueError("lookahead must leave every line something to write")
    # One extra padded position past the longest text: the stopping rule compares against it.
    padded = np.full((B, lengths.max() + 1), -1, np.int64)
    for b, c in enumerate(chars):
        padded[b, : len(c)] = c
    lengths = lengths - lookahead  # from here on: the position just past each line's written text
    own_chars = lengths - prime_length
    caps = np.array([length_cap(n, chars_per_step) for n in own_chars])
    if max_steps is not None:
        caps = np.minimum(caps, max_steps)
    state = stepper.start(padded, primed.state if primed is not None else None)
    # Lines that finish leave the batch (when the backend can shrink it): a page costs what its lines do,
    # not its longest line times the number of lines. Draws stay per whole batch (see `draw`).
    select = getattr(stepper, "select", None)
    alive = np.arange(B)  # the batch rows the network still steps, in order
    x = np.zeros((B, 3), np.float32)
    if primed is not None:
        x[:] = primed.last_input
    limit = (np.asarray(CLIP_SENSOR_UNITS) - np.abs(np.asarray(normalizer.mean))) / np.asarray(normalizer.std)
    done = np.zeros(B, bool)
    finishing = np.zeros(B, bool)
    by_window = np.zeros(B, bool)
    mark_end = np.zeros(B, bool) if ends_with_mark is None else np.asarray(ends_with_mark, bool)
    any_mark = bool(mark_end.any())
    on_mark = np.zeros(B, bool)  # the current stroke began with the window on the line's last character
    taken = np.zeros(B, int)
    pending_window: list[list[np.ndarray]] = [[] for _ in range(B)]
    pending_params: list[list[tuple]] = [[] for _ in range(B)]  # (raw outputs, the bias drawn with) per step
    low, high = -limit.astype(np.float32), limit.astype(np.float32)
    # Per line: its normalised steps not yet streamed (a step of a line that is writing, as [dx, dy, eos]), one for
    # one with its pending params and window when recording; the last characters' steps wait here (lost_steps).
    pending_x: list[list] = [[] for _ in range(B)]
    step = 0
    # Per stepped row: -inf past the position after its text, so the window's focus is found in one argmax.
    width = padded.shape[1]
    end_mask = np.where(np.arange(width)[None, :] <= lengths[:, None], 0.0, -np.inf)
    end_mask_alive, lengths_alive = end_mask, lengths  # the stepped rows' (re-indexed only when rows leave)
    x_in = x
    # After a prime the network first finishes the prime's last letter; a line starts with the stroke in
    # which the window moves on to the line's own text (or, should it never, with the first stroke begun after
    # about three characters' worth): the steps of that stroke so far wait in `since_lift` and lead the line's
    # first chunk.
    started = np.full(B, prime_length == 0 or not stepper.synthesis)
    waited = np.zeros(B, int)
    max_wait = int(np.ceil(3 / max(chars_per_step, 1e-3)))
    since_lift: list[list[tuple]] = [[] for _ in range(B)]  # (x, y, phi, bias) per step while a line waits
    all_started, all_done = bool(started.all()), False  # plain flags: numpy's .all() costs a step's worth
    any_finishing, min_cap = False, int(caps.min())
    # Per stepped row: steps in a row the pen has all but stood still (see stall_steps), and the largest of them,
    # as plain ints: a step without a stall costs one comparison before its draw, and counting a page's few rows
    # in a Python loop costs a third of numpy's calls on tiny arrays.
    still_alive, still_max = [0] * B, 0
    still_limit2 = (STILL_SHARE * float(np.mean(normalizer.std))) ** 2  # in sensor units, squared
    # A lost line (lost_steps): per stepped row, the furthest character its window has reached and the steps since;
    # per line, where its window reached each of its last two characters (_Mark), and the rewinds it has left.
    row_state = getattr(stepper, "row_state", None)
    lost_steps = lost_steps if stepper.synthesis and row_state is not None else 0
    furthest, since_furthest = [-1] * B, [0] * B
    marks: list[list[_Mark]] = [[] for _ in range(B)]
    rewinds_left, lost_at, lost_count = [rewinds] * B, [-1] * B, [0] * B
    (sx, sy), (mx, my) = (float(v) for v in normalizer.std), (float(v) for v in normalizer.mean)
    ended_unread = False  # keep_state: the line ended before this step's draw, so `before` has read it all
    while not all_done:
        before = state
        y, phi, state = stepper.step(x_in, state)
        if stepper.synthesis and phi is not None:
            # the window's focus: its largest weight among the line's characters and the position past them
            focus = (phi[:, :width] + end_mask_alive).argmax(axis=1)
            if not all_started:
                before = started.copy()
                started[alive[focus >= prime_length]] = True
                waited += ~started
                # Should the window not move on, the line starts anyway after about three characters' worth: with
                # the next stroke the pen begins (a stroke written wholly with the window on the prime belongs to
                # the prime: after "...lazy dog" the network now and then writes another "o"), or, should the pen
                # not lift either, after three times that, with the stroke in progress.
                started |= ((waited > max_wait) & (x[:, 2] > 0.5)) | (waited > 3 * max_wait)
                for b in np.flatnonzero(started & ~before):
                    lead_in, since_lift[b] = since_lift[b], []
                    taken[b] += len(lead_in)
                    pending_x[b] += [x_lead.tolist() for x_lead, _, _, _ in lead_in]
                    if record:
                        pending_params[b] += [(y_lead, b_lead) for _, y_lead, _, b_lead in lead_in]
                        pending_window[b] += [phi_lead[: lengths[b] + 1] for _, _, phi_lead, _ in lead_in]
            reached = focus == lengths_alive
            if any_mark:
                began = x[alive, 2] > 0.5  # the previous step lifted the pen: this step begins a stroke
                on_mark[alive[began]] = focus[began] == lengths_alive[began] - 1
            fired = alive[reached & ~done[alive] & ~finishing[alive] & started[alive]] if reached.any() else ()
            if len(fired):
                any_finishing = True
                finishing[fired] = by_window[fired] = True
                for b in fired.tolist():
                    marks[b] = []  # the window is at the end of the text: what is written stays
                # With the pen already lifted the line ends here; otherwise the pen finishes its stroke first,
                # so the last letter is not cut off.
                done[fired[(x[fired, 2] > 0.5) & (taken[fired] > 0)]] = True
                ended_unread = bool(done[0])
        compact = len(alive) < B
        row_bias = bias
        if stall_steps and still_max >= stall_steps:
            row_bias = np.where(np.array(still_alive) >= stall_steps, min(bias, 0.0), bias)
        drawn = sample_points(y, stepper.mixtures, row_bias, rng, alive if compact else None, B)
        np.clip(drawn[:, :2], low, high, out=drawn[:, :2])
        if compact:
            x = x.copy()
            x[alive] = drawn
        else:
            x = drawn
        if stall_steps:
            for i, (dx, dy, lift) in enumerate(drawn.tolist()):
                ex, ey = dx * sx + mx, dy * sy + my  # the step in sensor units
                still_alive[i] = 0 if lift > 0.5 or ex * ex + ey * ey >= still_limit2 else still_alive[i] + 1
            still_max = max(still_alive)
        step += 1
        active = ~done & started
        x_rows = x.tolist()
        for b in np.flatnonzero(active).tolist():
            pending_x[b].append(x_rows[b])
        taken += active
        if not all_started:
            all_started = bool(started.all())
            for i, b in enumerate(alive):
                if not started[b]:
                    since_lift[b] = [] if x[b, 2] > 0.5 else [*since_lift[b], (x[b], y[i], phi[i], _row(row_bias, i))]
        if record:
            for i, b in enumerate(alive):
                if active[b]:
                    pending_params[b].append((y[i], _row(row_bias, i)))
                    if phi is not None:
                        pending_window[b].append(phi[i, : lengths[b] + 1])
        if lost_steps:
            # Rows whose window may still lose its way (started, not yet at the end of their text), in a Python loop:
            # a page has a few rows, and numpy's calls on such tiny arrays cost a step more than the loop does.
            lost = []
            for i, (b, f) in enumerate(zip(alive.tolist(), focus.tolist(), strict=True)):
                if not started[b] or finishing[b] or done[b]:
                    since_furthest[i] = 0
                elif f > furthest[i]:
                    furthest[i], since_furthest[i] = f, 0
                    mark = _Mark(len(pending_x[b]), row_state(state, i), x[b].copy(), int(taken[b]), f, still_alive[i])
                    marks[b] = [*marks[b][-1:], mark]
                else:
                    since_furthest[i] += 1
                    if since_furthest[i] > lost_steps and rewinds_left[b] > 0:
                        lost.append(i)
            for i in lost:
                b = int(alive[i])
                lost_count[b] = lost_count[b] + 1 if lost_at[b] == furthest[i] else 1
                lost_at[b] = furthest[i]
                # lost where it was lost before: back to the character before (should the mark still be there)
                back = min(lost_count[b], len(marks[b]))
                marks[b] = marks[b][: len(marks[b]) - back + 1]
                mark = marks[b][-1]
                del pending_x[b][mark.pending :], pending_params[b][mark.pending :], pending_window[b][mark.pending :]
                state = stepper.set_row_state(state, i, mark.state)
                x[b], taken[b], furthest[i], still_alive[i] = mark.next_input, mark.taken, mark.furthest, mark.still
                since_furthest[i], on_mark[b] = 0, False
                rewinds_left[b] -= 1
            if lost:
                still_max = max(still_alive)
                drawn = x[alive]  # the stepped rows' next inputs, as put back
        # A line ends once its window has finished and the pen lifts, or at its length cap: neither can
        # happen before the window first finishes or the shortest cap is reached (plain checks until then).
        marked = active & on_mark & mark_end & (x[:, 2] > 0.5) if any_mark else None
        if marked is not None and marked.any():  # the one stroke of a closing full stop or comma is done
            by_window |= marked
            any_finishing = True
            done |= marked
        if any_finishing or step >= min_cap:
            done |= active & ((finishing & (x[:, 2] > 0.5)) | (taken >= caps))
            all_done = bool(done.all())
            if select is not None and not all_done and done[alive].any():
                keep = np.flatnonzero(~done[alive])
                state, alive = select(state, keep), alive[keep]
                end_mask_alive, lengths_alive = end_mask[alive], lengths[alive]
                still_alive = [still_alive[i] for i in keep]
                still_max = max(still_alive)
                furthest, since_furthest = [furthest[i] for i in keep], [since_furthest[i] for i in keep]
        # the stepped rows' inputs, x[alive]: this step's draws unless rows left the batch just now
        x_in = x if len(alive) == B else drawn if len(drawn) == len(alive) else x[alive]
        if step % chunk_steps == 0 or all_done:
            # A line's steps are streamed up to its older mark (after it, a rewind may take them back); all of them
            # once it has ended or the window is at the end of its text.
            sent = [
                len(p) if all_done or done[b] or not marks[b] else marks[b][0].pending for b, p in enumerate(pending_x)
            ]
            xs = np.asarray([v for b, p in enumerate(pending_x) for v in p[: sent[b]]], np.float32).reshape(-1, 3)
            if not np.isfinite(xs).all():  # checked per chunk: a NaN output makes NaN points
                raise FloatingPointError("the network produced NaN or infinite outputs; the model file may be damaged")
            xs = normalizer.denormalize(xs)  # the whole chunk at once
            offsets = np.split(xs, np.cumsum(sent[:-1]))
            window = None
            if record and stepper.synthesis:
                window = [np.array(w[: sent[b]]) for b, w in enumerate(pending_window)]
            chunk_params = None
            if record:
                chunk_params = []
                for b, p in enumerate(pending_params):
                    raw = np.reshape([q[0] for q in p[: sent[b]]], (-1, y.shape[1]))
                    chunk_params.append(mixture_params(raw, stepper.mixtures, [q[1] for q in p[: sent[b]]]))
            for b, n in enumerate(sent):
                if n:
                    del pending_x[b][:n], pending_params[b][:n], pending_window[b][:n]
                    marks[b] = [mark._replace(pending=mark.pending - n) for mark in marks[b]]
            final = None
            if keep_state and all_done:  # the state that has read every step of the line but its last
                final = stepper.carried(before if ended_unread else state)
            yield Chunk(offsets, done.copy(), step, by_window.copy(), window, chunk_params, final)


def generate(
    stepper: Stepper,
    chars: list[np.ndarray],
    normalizer: Normalizer,
    chars_per_step: float,
    bias: float = 0.0,
    rng: np.random.Generator | None = None,
    **kwargs,
) -> GenerationResult:
    """Run :func:`stream` to the end and join its chunks."""
    B = len(chars)
    parts: list[list[np.ndarray]] = [[] for _ in range(B)]
    windows: list[list[np.ndarray]] = [[] for _ in range(B)]
    by_window = np.zeros(B, bool)
    final_state = None
    for chunk in stream(stepper, chars, normalizer, chars_per_step, bias, rng, **kwargs):
        by_window, final_state = chunk.stopped_by_window, chunk.final_state
        for b in range(B):
            parts[b].append(chunk.offsets[b])
            if chunk.window is not None and len(chunk.window[b]):
                windows[b].append(chunk.window[b])
    offsets = [np.concatenate(p) if p else np.zeros((0, 3), np.float32) for p in parts]
    window = [np.concatenate(w) for w in windows if w]
    return GenerationResult(offsets, by_window, window, final_state)
