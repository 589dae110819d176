"""Dream: the text network invents a sentence, then the handwriting network writes it (no Qt, no torch).

The paper's two halves joined: :func:`dream_stream` samples characters one at a time (so a UI can show the
text as it appears) until a sentence ends; :func:`fit_to_alphabet` maps or drops what the handwriting model
cannot write (with a notice); :func:`dream_lines` wraps the text into lines a page can hold; and
:class:`DreamJob` runs all of it on a thread and hands the lines to a :class:`~engine.jobs.GenerationJob`::

    job = DreamJob(DreamRequest(text_model_path(), prime="The moon", seed=3), on_text=print).start()
    lines = job.result()          # the written lines (WrittenLine), after the text streamed to on_text

The text network runs with ONNX Runtime when its exported ``.onnx`` lies beside the model file, else with
:class:`NumpyTextStepper` (plain numpy, so the app never needs torch for it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from engine.handwriting.alphabet import TYPOGRAPHY, Alphabet
from engine.handwriting.page import wrap_text
from engine.jobs import GenerationJob, GenerationRequest
from engine.text.data import Vocabulary
from engine.text.model_file import TextModelFile, load_text_model
from engine.text.sampling import draw, softmax

TEXT_MODELS = {"shakespeare": "text-shakespeare.npz", "iam": "text-iam.npz"}
SENTENCE_ENDS = ".!?"
SPEAKER_LABEL_CHARS = 40
DEFAULT_MAX_CHARS = 160  # a sentence or two: what one page of the studio shows comfortably
DEFAULT_MIN_CHARS = 24  # a sentence end before this many characters does not stop the dream ("O. ")
WORD_GRACE = 24  # characters past max_chars allowed to finish the word in progress
DEFAULT_LINE_CHARS = 48  # characters per handwritten line: the synthesis model's lines in IAM-OnDB are ~40-60


def text_model_path(name: str = "shakespeare") -> Path:
    """Where a shipped text model lives (resources/models/text-NAME.npz); it may not exist."""
    if name not in TEXT_MODELS:
        raise ValueError(f"unknown text model {name!r}: use one of {', '.join(TEXT_MODELS)}")
    return Path(str(resources.files("resources").joinpath("models", TEXT_MODELS[name])))


# ----- the network ------------------------------------------------------------------------------------------
def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


class NumpyTextStepper:
    """The text network's step (:class:`engine.text.model.TextNet`) in numpy, from the model file's weights.

    Same interface as the torch and ONNX steppers: ``initial_state(batch)`` and ``step(x (B,), state)``.
    PyTorch's LSTM gate order (input, forget, cell, output); every layer reads the one-hot input, layers
    above the first also the layer below; the output layer reads every layer (the paper's skip connections).
    """

    def __init__(self, model: TextModelFile):
        config = model.meta["config"]
        self.layers, self.hidden = int(config["layers"]), int(config["hidden"])
        w = model.weights
        self._w_ih = [np.ascontiguousarray(w[f"lstms.{i}.weight_ih_l0"], np.float32) for i in range(self.layers)]
        self._w_hh = [np.ascontiguousarray(w[f"lstms.{i}.weight_hh_l0"], np.float32) for i in range(self.layers)]
        self._bias = [
            (w[f"lstms.{i}.bias_ih_l0"] + w[f"lstms.{i}.bias_hh_l0"]).astype(np.float32) for i in range(self.layers)
        ]
        self._w_out = np.ascontiguousarray(w["output.weight"], np.float32)
        self._b_out = np.asarray(w["output.bias"], np.float32)
        self.vocab_size = self._w_out.shape[0]

    def initial_state(self, batch: int) -> tuple[np.ndarray, np.ndarray]:
        shape = (self.layers, batch, self.hidden)
        return np.zeros(shape, np.float32), np.zeros(shape, np.float32)

    def step(self, x: np.ndarray, state: tuple[np.ndarray, np.ndarray]):
        h0, c0 = state
        x = np.asarray(x, np.int64)
        H, V = self.hidden, self.vocab_size
        hs, cs = [], []
        below = None
        for i in range(self.layers):
            w_ih = self._w_ih[i]
            # one-hot input times W is a column lookup; the layer below enters through the remaining columns
            gates = w_ih[:, x].T + h0[i] @ self._w_hh[i].T + self._bias[i]
            if below is not None:
                gates += below @ w_ih[:, V:].T
            gi, gf, gg, go = (gates[:, k * H : (k + 1) * H] for k in range(4))
            c = _sigmoid(gf) * c0[i] + _sigmoid(gi) * np.tanh(gg)
            h = _sigmoid(go) * np.tanh(c)
            hs.append(h)
            cs.append(c)
            below = h
        logits = np.concatenate(hs, axis=1) @ self._w_out.T + self._b_out
        return logits.astype(np.float32), (np.stack(hs).astype(np.float32), np.stack(cs).astype(np.float32))


def load_text_stepper(path: str | Path, model: TextModelFile | None = None):
    """(model file, stepper) for a text model: ONNX Runtime when an export lies beside it, else numpy."""
    model = model or load_text_model(path)
    onnx_file = Path(path).with_suffix(".onnx")
    if onnx_file.exists():
        try:
            from engine.text.onnx_step import TextOnnxStepper

            stepper = TextOnnxStepper(onnx_file)
            if stepper.manifest.get("vocabulary") == model.meta["vocabulary"]:
                return model, stepper
        except Exception:  # noqa: BLE001 - a stale or broken export: the numpy step works from the weights alone
            pass
    return model, NumpyTextStepper(model)


# ----- sampling a sentence ----------------------------------------------------------------------------------
def usable_prime(prime: str, vocab: Vocabulary) -> str:
    """The user's text as the text model can read it: unknown characters dropped, whitespace collapsed."""
    kept = "".join(c for c in prime.replace("\n", " ") if c in vocab.index)
    return " ".join(kept.split()) + (" " if kept.strip() and prime.rstrip() != prime else "")


def dream_stream(
    stepper,
    vocab: Vocabulary,
    prime: str = "",
    temperature: float = 1.0,
    seed: int | None = None,
    max_chars: int = DEFAULT_MAX_CHARS,
    min_chars: int = DEFAULT_MIN_CHARS,
    cancelled: Callable[[], bool] = lambda: False,
) -> Iterator[str]:
    """Sampled characters, one at a time, following ``prime`` (not repeated), until a sentence ends.

    Stops after a sentence end (. ! ?) once ``min_chars`` were sampled, at a blank line after that, at the
    first word boundary after ``max_chars`` (at most ``WORD_GRACE`` more characters, so the last word is
    whole), or when ``cancelled()``. The same arguments and seed always give the same characters.
    """
    rng = np.random.default_rng(seed)
    start = usable_prime(prime, vocab) or ("\n" if "\n" in vocab.index else vocab.chars[0])
    state = stepper.initial_state(1)
    logits = None
    for i in vocab.encode(start):
        logits, state = stepper.step(np.array([i], np.int64), state)
    count, previous = 0, ""
    while count < max_chars + WORD_GRACE and not cancelled():
        k = draw(softmax(logits[0], temperature), rng)
        char = vocab.chars[k]
        if count >= max_chars and char.isspace():
            return
        yield char
        count += 1
        if count >= min_chars and (char in SENTENCE_ENDS or (char == "\n" and previous == "\n")):
            return
        previous = char
        logits, state = stepper.step(np.array([k], np.int64), state)


def fit_to_alphabet(text: str, alphabet: Alphabet) -> tuple[str, list[str]]:
    """The text with what the handwriting model cannot write mapped (typography, line breaks) or dropped.

    Returns (text, notices); a notice names the dropped characters, so the user knows the page differs.
    """
    mapped = "".join(TYPOGRAPHY.get(c, c) for c in text.replace("\n", " "))
    dropped = sorted({c for c in mapped if c != " " and c not in alphabet})
    kept = "".join(c for c in mapped if c == " " or c in alphabet)
    notices = []
    if dropped:
        shown = ", ".join(repr(c) for c in dropped)
        notices.append(f"left out characters the handwriting model cannot write: {shown}")
    return " ".join(kept.split()), notices


def dream_lines(text: str, alphabet: Alphabet, line_chars: int = DEFAULT_LINE_CHARS) -> tuple[list[str], list[str]]:
    """The dreamt text fitted to the alphabet and wrapped into lines of about ``line_chars`` characters.

    A play's speaker label on a line of its own at the start ("ROMEO:", as the Shakespeare model writes when
    it starts afresh) is left out: it names who speaks, it is not part of the sentence.
    """
    first, newline, rest = text.lstrip().partition("\n")
    if newline and first.rstrip().endswith(":") and len(first) <= SPEAKER_LABEL_CHARS and rest.strip():
        text = rest
    fitted, notices = fit_to_alphabet(text, alphabet)
    lines = [line for line in wrap_text(fitted, float(line_chars), 1.0) if line.strip()] if fitted else []
    return lines, notices


# ----- the job ----------------------------------------------------------------------------------------------
@dataclass
class DreamRequest:
    text_model: str | Path
    prime: str = ""  # the user's text to continue ("" for a new sentence)
    temperature: float = 0.8
    seed: int | None = None
    max_chars: int = DEFAULT_MAX_CHARS
    line_chars: int = DEFAULT_LINE_CHARS
    generation: GenerationRequest = field(default_factory=lambda: GenerationRequest([]))  # texts filled in here


@dataclass
class Dreamt:
    text: str  # the prime plus what the text model wrote, as sampled
    lines: list[str]  # what the handwriting model writes
    notices: list[str]


class DreamJob:
    """Text sampling then handwriting on one background thread; ``cancel()`` stops either stage.

    ``on_text(char)`` gets every sampled character, ``on_dreamt(Dreamt)`` the lines before writing starts;
    the remaining callbacks are :class:`GenerationJob`'s (``on_chunk``, ``on_progress``, ...).
    """

    def __init__(
        self,
        request: DreamRequest,
        on_text: Callable[[str], None] | None = None,
        on_dreamt: Callable[[Dreamt], None] | None = None,
        **generation_callbacks,
    ):
        self.request = request
        self.on_text, self.on_dreamt = on_text, on_dreamt
        self.generation_callbacks = generation_callbacks
        self.dreamt: Dreamt | None = None
        self.generation: GenerationJob | None = None
        self._cancel = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="penwright-dream", daemon=True)

    def start(self) -> DreamJob:
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancel.set()
        if self.generation is not None:
            self.generation.cancel()

    def result(self, timeout: float | None = None):
        """The written lines (re-raises the job's exception; JobCancelled when cancelled)."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError("the dream job is still running")
        if self._error is not None:
            raise self._error
        if self.generation is None:
            from engine.jobs import JobCancelled

            raise JobCancelled("the dream job was cancelled")
        return self.generation.result()

    def _run(self) -> None:
        try:
            request = self.request
            model, stepper = load_text_stepper(request.text_model)
            sampled = []
            for char in dream_stream(
                stepper,
                model.vocab,
                request.prime,
                request.temperature,
                request.seed,
                request.max_chars,
                cancelled=self._cancel.is_set,
            ):
                sampled.append(char)
                if self.on_text is not None:
                    self.on_text(char)
            if self._cancel.is_set():
                return
            generation = request.generation
            writer = generation.writer
            if writer is None:
                from engine.handwriting.writer import HandwritingWriter

                writer = HandwritingWriter.load(generation.model_path, generation.backend, generation.device)
            text = (request.prime + "".join(sampled)).strip()
            lines, notices = dream_lines(text, writer.alphabet, request.line_chars)
            if not lines:
                raise ValueError("the text model wrote nothing the handwriting model can write")
            self.dreamt = Dreamt(text, lines, notices)
            if self.on_dreamt is not None:
                self.on_dreamt(self.dreamt)
            job_request = GenerationRequest(
                lines, **{k: v for k, v in vars(generation).items() if k not in ("texts", "writer")}, writer=writer
            )
            self.generation = GenerationJob(job_request, **self.generation_callbacks)
            if self._cancel.is_set():
                self.generation.cancel()
            self.generation.start().wait()
        except BaseException as exc:  # noqa: BLE001 - handed to result()
            self._error = exc
