"""The public handwriting API: load a model, write lines of text as pen strokes, optionally primed.

writer = HandwritingWriter.load()                  # the shipped synthesis network
lines = writer.write(["Hello world"], bias=1.0, seed=7)
lines[0].strokes                                    # list of (n, 2) arrays, sensor units, y up
page = writer.write(["Dear Anna,", "thank you"], bias=1.0, seed=7, one_hand=True)  # one invented hand for all
mine = writer.write(["Dear Anna,"], bias=1.0, seed=7, prime=style, match_style=True)  # in a style, its proportions
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from engine import __version__ as engine_version
from engine.handwriting import style_matching
from engine.handwriting.alphabet import Alphabet
from engine.handwriting.checkpoint import ModelFile, ModelFileError, load_model_file
from engine.handwriting.correction_store import CorrectionStore, correction_key
from engine.handwriting.preprocessing import Normalizer, points_to_offsets
from engine.handwriting.sampling import (
    STILL_SHARE,
    Chunk,
    MixtureParams,
    PrimedState,
    first_focus,
    generate,
    prime_state,
    stream,
)
from engine.handwriting.style_matching import StyleCorrection, correction_between, measured

MODEL_FILES = {"synthesis": "handwriting-synthesis.npz", "prediction": "handwriting-prediction.npz"}
# A line ending in one of these ends when its stroke does (see sampling.stream's ends_with_mark).
SINGLE_STROKE_MARKS = ".,"
# What the network writes to invent a hand for a page without a style (see HandwritingWriter.invented_hand).
# Common letters, no dots or crossings that the network adds after the word. Short: the hand is written before the
# page's first stroke; "a hand" (87 steps) keeps a page's lines as alike as "a good hand" (156 steps) did (80 pages
# at bias 1: letter height varies 10.9% / 11.1% from line to line, slant 2.8 / 3.1 deg, width 6.1% / 5.6%; lines
# written independently: 21.6%, 7.2 deg, 11.1%), and pages as varied from seed to seed (resources/models/
# handwriting-synthesis.md).
HAND_TEXT = "a hand"
HAND_TRIES = 5  # invented samples tried until one ends well (by the window, at its text's end, at a fair pace)
# An invented hand slower than this (steps per character against the training data's pace) is invented again: a
# slow hand writes with short, uncertain steps, and its page copies them. Session 14, 60 seeds at bias 1, a page of
# 20 pangrams in each hand: the 22 hands over 90 steps ("a hand", 1.15 times the pace) had 1.73 lines a page with a
# lost stretch (writer.LOST_CHARACTERS) and 16.5 steps per character, the other 38: 0.03 and 13.3.
HAND_MAX_PACE = 1.15
# A line whose pen has all but stood still this many steps in a row is drawn without bias until it moves again
# (sampling.stream's stall_steps): primed at bias 1, 8 pages of 10 pangrams took 11% fewer steps to their longest line.
STALL_STEPS = 8
# A line whose window has not reached a new character in this many characters' worth of steps (at the training
# data's pace) has lost its way and is drawn again from the character it is on, or the one before (sampling.stream's
# lost_steps, at most LOST_REWINDS times a line): at bias 0.75-1, 7-11% of pangram lines (1.5-4.5% of testset_v
# sentences) had a scribbled stretch in place of a letter or two, 0.2-1% since (resources/models/
# handwriting-synthesis.md).
LOST_CHARACTERS = 3.0
LOST_REWINDS = 4
HANDS_KEPT = 16  # invented hands remembered per writer, by (seed, bias): a page written again reuses its hand
# Matching a style's proportions (engine.handwriting.style_matching): the style's own text is written this many
# times, as one batch, to measure how the network writes in that style. Letter height varies about 18% from line
# to line at bias 0 (12% at 0.75), so a dozen lines left the average off by up to 7% and 36 bring it to about 3%
# (docs/training.md). The seed comes from the style: with one seed for every style, that seed's luck would bias
# them all.
MATCH_SAMPLES = 36
MATCH_CHARACTERS = 1440  # a long style is written fewer times (at least 4): its longer lines measure steadier
MATCH_BIAS_STEP = 0.25  # measured at the nearest multiple: a slider dragged along reuses a few measures
CORRECTIONS_KEPT = 32


def shipped_model_path(kind: str = "synthesis") -> Path:
    """Path of a model shipped in resources/models (works installed, editable and frozen)."""
    return Path(str(resources.files("resources").joinpath("models", MODEL_FILES[kind])))


def offsets_to_strokes(
    offsets: np.ndarray, start: tuple[float, float] = (0.0, 0.0), pen_down_at_start: bool = True
) -> list[np.ndarray]:
    """Steps (dx, dy-up, eos) -> strokes: lists of absolute (x, y-up) points, split where the pen lifts."""
    offsets = np.asarray(offsets, np.float64)
    xy = np.vstack([np.asarray(start, np.float64)[None], start + np.cumsum(offsets[:, :2], axis=0)])
    lifts = np.concatenate([[0.0 if pen_down_at_start else 1.0], offsets[:, 2]])
    strokes, current = [], []
    for point, lift in zip(xy, lifts, strict=True):
        current.append(point)
        if lift > 0.5:
            if len(current) > 1:
                strokes.append(np.array(current))
            current = []
    if len(current) > 1:
        strokes.append(np.array(current))
    return strokes


@dataclass
class Prime:
    """Strokes of the user's (or a data set's) writing plus what they say, in the model's convention."""

    offsets: np.ndarray  # (T, 3) sensor units (dx, dy-up, eos)
    text: str

    @classmethod
    def from_points(cls, points: np.ndarray, text: str, convention: str) -> Prime:
        """From absolute points (x, y-down, eos) as IAM-OnDB records them."""
        return cls(points_to_offsets(points, convention), text)


@dataclass
class WrittenLine:
    text: str
    offsets: np.ndarray
    stopped_by_window: bool
    notices: list[str] = field(default_factory=list)
    window: np.ndarray | None = None
    primed: bool = False
    params: MixtureParams | None = None  # per step (first axis), when a generation job recorded them

    @property
    def strokes(self) -> list[np.ndarray]:
        return offsets_to_strokes(self.offsets, pen_down_at_start=not self.primed)


class HandwritingWriter:
    def __init__(self, model: ModelFile, stepper):
        if model.kind != "synthesis":
            raise ModelFileError("writing text needs a synthesis model, not a " + model.kind + " model")
        self.model = model
        self.stepper = stepper
        self.alphabet = Alphabet.from_dict(model.meta["alphabet"])
        self.normalizer = Normalizer.from_dict(model.meta["normalizer"])
        self.convention: str = model.meta["convention"]
        self.chars_per_step: float = model.meta["config"]["chars_per_step"]
        # (key of the prime, its state, its notices): the last style
        self._primed: tuple[str, PrimedState, list[str]] | None = None
        self._hands: dict[tuple[int, float], Prime] = {}  # invented hands by (seed, bias), oldest first
        self._hand_states: dict[str, PrimedState] = {}  # their states as written (by prime key), kept alike
        self._corrections: dict[tuple[str, float], StyleCorrection] = {}  # by (prime key, bias)
        # where measured corrections outlive this writer (the CLI, the app across restarts); None: memory only
        self.correction_store: CorrectionStore | None = None
        self._fingerprint: str | None = None

    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        backend: str = "auto",
        device: str = "cpu",
        keep_corrections: bool = False,
    ) -> HandwritingWriter:
        """``backend``: "torch", "onnx" (the exported ``.onnx`` beside the model file; no torch needed) or
        "auto" (ONNX when that file exists and onnxruntime imports, else torch). ``keep_corrections``: style
        corrections are kept in the user's cache folder (:class:`CorrectionStore`) and read back by later runs."""
        path = Path(path) if path is not None else shipped_model_path("synthesis")
        model = load_model_file(path)
        writer = cls(model, make_stepper(model, backend, device, path))
        if keep_corrections:
            writer.correction_store = CorrectionStore.default()
        return writer

    @property
    def backend_description(self) -> str:
        """Which backend runs the network, and on which device: "ONNX Runtime 1.x, CPUExecutionProvider"."""
        return getattr(self.stepper, "description", type(self.stepper).__name__)

    @property
    def notices(self) -> list[str]:
        """Why the backend or device in use is not the one asked for (empty when it is)."""
        return list(getattr(self.stepper, "notices", []))

    def prepare(self, texts: list[str]) -> tuple[list[str], list[list[str]]]:
        prepared = [self.alphabet.prepare(t) for t in texts]
        return [p.text for p in prepared], [p.notices for p in prepared]

    def primed_state(self, prime: Prime) -> PrimedState:
        """The network's state after reading ``prime``: computed once, reused while the same prime comes back
        (a page of lines, or job after job in the same style)."""
        return self._primed_entry(prime)[1]

    def style_notices(self, prime: Prime | None) -> list[str]:
        """What the user should know about writing in ``prime``: where its strokes and its text disagree at the end
        (the lines are written as :meth:`_text_where_the_window_is` sets them right). None for an invented hand."""
        return [] if prime is None else list(self._primed_entry(prime)[2])

    def _primed_entry(self, prime: Prime) -> tuple[str, PrimedState, list[str]]:
        """(the prime's key, its state, its notices), the state read once per style (an invented hand: the
        network's state as it finished writing it, without notices)."""
        key = self._prime_key(prime)
        if key in self._hand_states:
            return key, self._hand_states[key], []
        if self._primed is None or self._primed[0] != key:
            offsets = self.normalizer.normalize(np.ascontiguousarray(prime.offsets, np.float32))
            state, notes = self._text_where_the_window_is(
                prime_state(self.stepper, offsets, self.alphabet.encode(self._prime_text(prime)))
            )
            self._primed = (key, state, notes)
        return self._primed

    def _text_where_the_window_is(self, state: PrimedState) -> tuple[PrimedState, list[str]]:
        """``state`` with its text ending where its window does, so that the lines begin at their first letter.

        A style's window can end off its text: past it when the pen wrote on after the last transcribed letter (a
        flourish, a stray stroke; 3 of 200 testset_v lines taken as styles), and every line would begin a letter
        or two late: word spaces follow the text, for the window to pass over first (the network writes a word
        gap, not ink). Or behind it, when the strokes end before their transcription does (a word left out, a
        window that fell behind; 14 of 200 lag two letters or more), and every line would begin with the
        style's last words ("that all is Sphinx of..."): the text is cut after the letter the window is on, and
        a word space follows. One letter behind is the common case (the network finishing the last letter): the
        lines' start rule in ``sampling.stream`` handles it."""
        ahead = first_focus(self.stepper, state) if self.stepper.synthesis else 0
        space = self.alphabet.encode(" ")
        if ahead >= 1:
            chars = np.concatenate([state.chars, np.repeat(space, ahead + 1)])
            note = "the style's strokes run on past its text (a flourish, a stray stroke?): each line starts after them"
        elif ahead <= -3:
            chars = np.concatenate([state.chars[: len(state.chars) + ahead + 1], space])
            read = "".join(self.alphabet.characters[int(c)] for c in chars[:-1]).strip()
            note = (
                f'the style\'s strokes seem to end before its text does, at "…{read[-16:]}": lines are written as '
                "if its text ended there (check the style's text)"
            )
        else:
            return state, []
        return PrimedState(state.state, chars, state.last_input), [note]

    def _prime_text(self, prime: Prime) -> str:
        """The prime's text in the window: a word space follows it, before the text written next."""
        return self.alphabet.prepare(prime.text).text + " "

    def _prime_key(self, prime: Prime) -> str:
        offsets = np.ascontiguousarray(prime.offsets, np.float32)
        text = self._prime_text(prime).encode()
        return hashlib.sha1(text + offsets.tobytes() + str(offsets.shape).encode()).hexdigest()

    def invented_hand(self, seed: int | None, bias: float) -> Prime:
        """A hand the network invents for ``seed``: a short sample of its own writing, unprimed, to prime the lines
        of a page without a style. Unprimed, every line is a new random writer (its own slant, size and pace);
        primed with one sample, the page reads as written by one person, and its lines keep one pace, so the
        batch does not wait on one slow line. The same seed invents the same hand (remembered: a page written
        again, or one of its lines, does not invent it anew)."""
        key = (seed, float(bias))
        if seed is not None and key in self._hands:
            return self._hands[key]
        text = HAND_TEXT
        if self.alphabet.unknown(text):  # a model that cannot write it: the first letters it can
            text = "".join(c for c in self.alphabet.characters if c.isalpha())[:4] or self.alphabet.characters[:4]
        clean = self.alphabet.prepare(text).text
        # The window sees the word space that follows a prime (not written: lookahead), so the state the network
        # finishes the hand in is the state reading the hand as a prime gives: the lines continue from it, and
        # the hand is not read again (that cost a page about a third of inventing the hand).
        chars = [self.alphabet.encode(clean + " ")]
        most_steps = int(np.ceil(HAND_MAX_PACE * len(chars[0]) / max(self.chars_per_step, 1e-3)))
        best = None  # should no try pass: the fastest that ended on its text, else the fastest
        for attempt in range(HAND_TRIES):
            entropy = [seed, attempt, 0x4A4D]
            sub_seed = None if seed is None else int(np.random.SeedSequence(entropy).generate_state(1)[0])
            rng = np.random.default_rng(sub_seed)
            result = generate(
                self.stepper,
                chars,
                self.normalizer,
                self.chars_per_step,
                bias,
                rng,
                keep_state=True,
                lookahead=1,
                stall_steps=STALL_STEPS,
                **self._lost_rule(),
            )
            hand = Prime(result.offsets[0], clean)
            last = self.normalizer.normalize(np.ascontiguousarray(hand.offsets[-1:], np.float32))[0]
            state = PrimedState(result.final_state, chars[0], last)
            # A hand whose pen wrote on well after its window reached the word space leaves the window past it:
            # every line of the page would begin with its first letters skipped ("Sphinx" as "inx"; about 1 hand
            # in 200 at bias 0.75-1): tried again, as one that runs to the length cap is, or a slow one.
            on_text = bool(result.stopped_by_window[0]) and first_focus(self.stepper, state) <= 0
            rank = (not on_text, len(hand.offsets))
            if best is None or rank < best[0]:
                best = (rank, hand, state)
            if on_text and len(hand.offsets) <= most_steps:
                break
        _, hand, state = best
        hand_key = self._prime_key(hand)
        if seed is None:
            self._primed = (hand_key, state, [])
            return hand
        self._hands[key] = hand
        self._hand_states[hand_key] = state
        while len(self._hands) > HANDS_KEPT:
            oldest = self._hands.pop(next(iter(self._hands)))
            self._hand_states.pop(self._prime_key(oldest), None)
        return hand

    def style_correction(self, prime: Prime, bias: float) -> StyleCorrection:
        """The correction that gives writing in ``prime``'s style its letter height, width and slant (measured once per
        style and bias, to the nearest ``MATCH_BIAS_STEP``, then remembered). An invented hand is the network's own:
        it needs none."""
        key, at_bias, stored_key = self._correction_keys(prime, bias)
        known = self._known_correction(key, at_bias, stored_key)
        if known is not None:
            return known
        correction = self._measure_correction(prime, key, at_bias)
        if stored_key is not None:
            self.correction_store.put(stored_key, correction)
        self._remember_correction((key, at_bias), correction)
        return correction

    def knows_style_correction(self, prime: Prime, bias: float) -> bool:
        """Whether :meth:`style_correction` answers at once (remembered, kept in the store, or not needed), rather
        than measuring first (a batch of lines: seconds on one thread; a UI says so meanwhile)."""
        return self._known_correction(*self._correction_keys(prime, bias)) is not None

    def _correction_keys(self, prime: Prime, bias: float) -> tuple[str, float, str | None]:
        """(the prime's key, the bias step it is measured at, its key in the store or None without one)."""
        key, at_bias = self._prime_key(prime), round(float(bias) / MATCH_BIAS_STEP) * MATCH_BIAS_STEP
        return key, at_bias, self._stored_correction_key(key, at_bias) if self.correction_store is not None else None

    def _known_correction(self, key: str, at_bias: float, stored_key: str | None) -> StyleCorrection | None:
        """The correction without measuring: none for an invented hand, else remembered or read from the store."""
        if key in self._hand_states:
            return StyleCorrection()
        if (key, at_bias) in self._corrections:
            return self._corrections[(key, at_bias)]
        stored = self.correction_store.get(stored_key) if stored_key is not None else None
        if stored is not None:
            self._remember_correction((key, at_bias), stored)
        return stored

    def _remember_correction(self, cache_key: tuple[str, float], correction: StyleCorrection) -> None:
        self._corrections[cache_key] = correction
        while len(self._corrections) > CORRECTIONS_KEPT:
            self._corrections.pop(next(iter(self._corrections)))

    def _measure_correction(self, prime: Prime, key: str, bias: float) -> StyleCorrection:
        """Write the style's own text (as one batch, seeded by the style) and compare it with the style's strokes."""
        text = self.alphabet.prepare(prime.text).text
        target = measured([(offsets_to_strokes(prime.offsets, pen_down_at_start=False), text)])
        samples = int(np.clip(np.ceil(MATCH_CHARACTERS / max(len(text), 1)), 4, MATCH_SAMPLES))
        lines = self.write([text] * samples, bias, int(key[:8], 16), prime)
        return correction_between(target, [(line.strokes, line.text) for line in lines])

    def _stored_correction_key(self, prime_key: str, bias: float) -> str:
        """Everything a measured correction depends on: weights, backend, style, neatness step, measuring settings."""
        if self._fingerprint is None:  # once per writer: about 10 ms for the shipped network
            digest = hashlib.sha1(json.dumps(self.model.meta, sort_keys=True, default=str).encode())
            for name in sorted(self.model.weights):
                digest.update(name.encode())
                digest.update(np.ascontiguousarray(self.model.weights[name]).tobytes())
            self._fingerprint = digest.hexdigest()
        # the measured lines are drawn with the stall rule: a correction measured without it (or with another) differs;
        # a change to the rule's logic (not its settings) needs MEASURING_VERSION or the engine version bumped
        settings = (
            MATCH_SAMPLES,
            MATCH_CHARACTERS,
            *style_matching.MEASURING_SETTINGS,
            ("stalls", STALL_STEPS, STILL_SHARE),
            ("lost", LOST_CHARACTERS, LOST_REWINDS),
            ("text where the window is", 2),  # _text_where_the_window_is (session 13)
            engine_version,
        )
        # the network that runs: an ONNX export is keyed by its own file too, the backend by its version and device
        runs = (self.backend_description, getattr(self.stepper, "manifest", {}).get("onnx_sha256"))
        return correction_key("style-correction", self._fingerprint, runs, prime_key, bias, settings)

    def _matching(self, prime: Prime | None, bias: float, match_style: bool) -> StyleCorrection:
        """The correction for a style the caller gave (none without one, or without ``match_style``)."""
        return self.style_correction(prime, bias) if match_style and prime is not None else StyleCorrection()

    def forget_hands(self) -> None:
        """Forget the invented hands (benchmarks that time inventing one)."""
        self._hands.clear()
        self._hand_states.clear()

    def page_prime(self, texts: list[str], prime: Prime | None, one_hand: bool, seed, bias: float) -> Prime | None:
        """The prime a batch of ``texts`` is written with: ``prime``, or with ``one_hand`` and none given, an
        :meth:`invented_hand` for several lines."""
        if prime is None and one_hand and len(texts) > 1:
            return self.invented_hand(seed, bias)
        return prime

    def _arguments(self, texts: list[str], prime: Prime | None):
        clean, notices = self.prepare(texts)
        chars = [self.alphabet.encode(t) for t in clean]
        kwargs: dict = {
            "ends_with_mark": np.array([t[-1:] in SINGLE_STROKE_MARKS for t in clean]),
            "stall_steps": STALL_STEPS,
            **self._lost_rule(),
        }
        if prime is not None:
            kwargs["primed"] = self.primed_state(prime)
            notices = [[*line_notices, *self.style_notices(prime)] for line_notices in notices]
        return clean, notices, chars, kwargs

    def _lost_rule(self) -> dict:
        """``sampling.stream``'s arguments for lines that lose their way (LOST_CHARACTERS)."""
        return {"lost_steps": int(np.ceil(LOST_CHARACTERS / max(self.chars_per_step, 1e-3))), "rewinds": LOST_REWINDS}

    def stream(
        self,
        texts: list[str],
        bias: float = 0.0,
        seed: int | None = None,
        prime: Prime | None = None,
        chunk_steps: int = 16,
        record: bool = False,
        one_hand: bool = False,
        match_style: bool = False,
    ) -> Iterator[Chunk]:
        """Chunks of pen steps for every line as they are produced (the UI draws them at once).

        Notices about the text (mapped typography, rare characters) come from :meth:`prepare`. ``one_hand``:
        without a prime, several lines are written in one :meth:`invented_hand` (as a page is).
        ``match_style``: with a prime, its letter height, width and slant are matched (:meth:`style_correction`).
        A writer runs one job at a time: it is not meant to be shared between threads.
        """
        correction = self._matching(prime, bias, match_style)
        prime = self.page_prime(texts, prime, one_hand, seed, bias)
        _, _, chars, line_kwargs = self._arguments(texts, prime)
        chunks = stream(
            self.stepper,
            chars,
            self.normalizer,
            self.chars_per_step,
            bias,
            np.random.default_rng(seed),
            chunk_steps=chunk_steps,
            record=record,
            **line_kwargs,
        )
        mean, std = self.normalizer.mean, self.normalizer.std
        for chunk in chunks:
            if not correction.is_identity:
                chunk.offsets = [correction.apply(o) for o in chunk.offsets]
                if chunk.params is not None:  # what the network predicted, as the corrected writing sees it
                    chunk.params = [correction.apply_to_params(p, mean, std) for p in chunk.params]
            yield chunk

    def write(
        self,
        texts: list[str],
        bias: float = 0.0,
        seed: int | None = None,
        prime: Prime | None = None,
        record: bool = False,
        one_hand: bool = False,
        match_style: bool = False,
    ) -> list[WrittenLine]:
        """Write ``texts`` as one batch (``one_hand``, ``match_style``: as in :meth:`stream`)."""
        correction = self._matching(prime, bias, match_style)
        prime = self.page_prime(texts, prime, one_hand, seed, bias)
        clean, notices, chars, line_kwargs = self._arguments(texts, prime)
        result = generate(
            self.stepper,
            chars,
            self.normalizer,
            self.chars_per_step,
            bias,
            np.random.default_rng(seed),
            record=record,
            **line_kwargs,
        )
        lines = []
        for b, text in enumerate(clean):
            window = result.window[b] if record and b < len(result.window) else None
            lines.append(
                WrittenLine(
                    text,
                    correction.apply(result.offsets[b]),
                    bool(result.stopped_by_window[b]),
                    notices[b],
                    window,
                    prime is not None,
                )
            )
        return lines


BACKENDS = ("torch", "onnx", "auto")


def make_stepper(model: ModelFile, backend: str = "torch", device: str = "cpu", path: str | Path | None = None):
    """The network behind a model file, run by the chosen backend.

    "onnx" runs ``<model stem>.onnx`` beside the model file at ``path`` (with its manifest; export it with
    ``python -m engine.backends.onnx_export MODEL.npz``); "auto" prefers it when it exists and onnxruntime
    imports, else torch. ``device``: "cpu", "cuda" (torch and ONNX) or "auto" (CUDA when available; torch also
    tries MPS); a device that fails falls back to the CPU with a notice (the stepper's ``notices``).
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}: use one of {', '.join(BACKENDS)}")
    onnx_file = Path(path).with_suffix(".onnx") if path is not None else None
    if backend == "onnx" or (backend == "auto" and onnx_file is not None and onnx_file.exists()):
        if onnx_file is None:
            raise ValueError("the ONNX backend needs the model file's path: its .onnx lies beside it")
        try:
            from engine.backends.onnx_backend import OnnxStepper
        except ImportError as exc:
            if backend == "onnx":
                raise RuntimeError("the ONNX backend needs onnxruntime: pip install onnxruntime") from exc
        else:
            return OnnxStepper(onnx_file, model, device, model_path=path)
    try:
        from engine.backends.torch_backend import TorchStepper
    except ImportError as exc:
        hint = ""
        if backend == "auto" and onnx_file is not None:
            hint = f" (and there is no exported {onnx_file.name} beside the model file)"
        raise RuntimeError(f"the PyTorch backend needs torch: pip install 'penwright[torch]'{hint}") from exc
    return TorchStepper(model, device)
