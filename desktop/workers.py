"""Background jobs: loading a model and writing text run off the UI thread, one at a time, cancellably.

Jobs run on Qt's global thread pool (:class:`_Worker`: a plain function, or a generator whose values reach the
UI thread as they come, as superqt's thread workers do; superqt itself is not imported because importing it
builds all of its widgets, a third of the app's start-up). A :class:`JobRunner` runs at most one: submitting
a new job asks the running one to stop at its next chunk and starts the new one once the old thread has let
go, so two jobs never compete for the CPU or the model, and late results of a cancelled job are dropped,
never drawn.
"""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from desktop.strokes import LineStrokes
from engine.handwriting.alphabet import UnknownCharactersError
from engine.handwriting.checkpoint import ModelFileError
from engine.handwriting.sampling import MixtureParams
from engine.handwriting.writer import HandwritingWriter, Prime, shipped_model_path


class JobError(Exception):
    """A job failed; the message is meant for the user.

    Deliberately not a RuntimeError: readable_error treats those as engine failures and rewords them.
    """


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?", "…")) else text + "."


def readable_error(exc: BaseException) -> str:
    """What went wrong, in words for the person at the window (no tracebacks, no class names if avoidable)."""
    if isinstance(exc, JobError):
        return str(exc)
    if isinstance(exc, UnknownCharactersError):
        shown = ", ".join(repr(c) for c in exc.characters)
        return f"The handwriting model cannot write these characters: {shown}. Remove or replace them."
    if isinstance(exc, ModelFileError):
        return "Could not load the handwriting model: " + _sentence(str(exc))
    if isinstance(exc, MemoryError):
        return "Not enough memory to finish writing; try fewer or shorter lines."
    if isinstance(exc, (ValueError, FloatingPointError, RuntimeError, OSError)) and str(exc):
        return _sentence(str(exc))
    return f"Something went wrong while writing ({exc.__class__.__name__}: {exc})."


def load_job(path: str | Path | None, backend: str = "auto", device: str = "auto") -> HandwritingWriter:
    """Load a synthesis model (the shipped one when ``path`` is None); importing torch takes a moment.

    ``backend`` "auto", "onnx" or "torch" and ``device`` "auto", "cpu" or "cuda", as the engine takes them.
    """
    target = Path(path) if path else shipped_model_path("synthesis")
    if not target.exists():
        raise JobError(
            f"No handwriting model found at {target}. Train one (penwright train handwriting) "
            "or choose File → Load handwriting model…"
        )
    try:
        return HandwritingWriter.load(target, backend=backend, device=device, keep_corrections=True)
    except Exception as exc:  # any failure here means "this file can't be used"; say why
        message = readable_error(exc)
        if not isinstance(exc, ModelFileError):
            message = "Could not load the handwriting model: " + message
        raise JobError(message) from exc


@dataclass(frozen=True)
class LineUpdate:
    """New strokes for one line: ``closed`` ones to append, and the stroke(s) still being drawn."""

    line: int
    closed: list[np.ndarray]
    open: list[np.ndarray]


@dataclass(frozen=True)
class WriteProgress:
    updates: list[LineUpdate]
    done: list[bool]
    steps: int
    windows: list[np.ndarray] | None = None  # per line, this chunk's attention rows (steps, chars + 1)
    status: str | None = None  # what the job is doing before it writes (no strokes come with it)


@dataclass(frozen=True)
class Recording:
    """What the network predicted at each step of each line, for the insight plots (recorded: measured free).

    ``windows`` per line (steps, chars + 1); ``params`` per line, the mixture for each step in normalised
    units; ``offsets`` per line (steps, 3) in sensor units; ``mean``/``std`` map normalised offsets to sensor.
    """

    windows: list[np.ndarray]
    params: list[MixtureParams]
    offsets: list[np.ndarray]
    mean: tuple[float, float]
    std: tuple[float, float]


@dataclass(frozen=True)
class WriteResult:
    """A finished job: what was written (cleaned text) and each line's strokes, ready for export."""

    texts: list[str]
    lines: list[list[np.ndarray]]
    bias: float
    seed: int | None
    notices: list[str] = field(default_factory=list)
    capped_lines: list[int] = field(default_factory=list)  # lines the length cap stopped, 0-based
    seconds: float = 0.0
    primed: bool = False  # written in a style (after reading the user's handwriting)
    recording: Recording | None = None


def replace_line(page: WriteResult, index: int, line: WriteResult) -> WriteResult:
    """The page with line ``index`` replaced by a one-line result (the same line written again on its own)."""

    def swap(items: list, new) -> list:
        return [*items[:index], new, *items[index + 1 :]]

    recording = page.recording
    if recording is not None and line.recording is not None:
        recording = replace(
            recording,
            windows=swap(recording.windows, line.recording.windows[0]),
            params=swap(recording.params, line.recording.params[0]),
            offsets=swap(recording.offsets, line.recording.offsets[0]),
        )
    capped = sorted({*(i for i in page.capped_lines if i != index), *(index for _ in line.capped_lines)})
    return replace(
        page,
        texts=swap(page.texts, line.texts[0]),
        lines=swap(page.lines, line.lines[0]),
        notices=sorted({*page.notices, *line.notices}),
        capped_lines=capped,
        recording=recording,
    )


def _join(parts: list, empty: np.ndarray) -> np.ndarray:
    return np.concatenate(parts) if parts else empty


def _join_params(parts: list[MixtureParams]) -> MixtureParams:
    """One line's per-chunk mixtures as one (steps, ...) set."""
    fields = ("eos", "pi", "mu", "sigma", "rho")
    return MixtureParams(*(np.concatenate([getattr(p, name) for p in parts]) for name in fields))


MEASURING_STATUS = (
    "Measuring how the network writes this style (its size, width and slant; once per style and neatness step, "
    "then remembered)…"
)


def prepare_style_job(writer: HandwritingWriter, prime: Prime, bias: float, match: bool = True) -> list[str]:
    """Get a style ready before the first page in it is written, so that pressing Write starts drawing at once:
    read it into the network (the engine keeps the state) and, with ``match``, measure its size, width and slant
    correction (the engine's ``style_correction`` remembers it). Returns what the user should know about the
    style (``style_notices``: its strokes and its text disagree at the end), while they can still fix its text."""
    try:
        if match:
            writer.style_correction(prime, bias)
        return writer.style_notices(prime)
    except Exception as exc:  # the page itself will report it, if it happens again
        raise JobError(readable_error(exc)) from exc


def write_job(
    writer: HandwritingWriter,
    texts: list[str],
    bias: float,
    seed: int | None,
    prime: Prime | None = None,
    chunk_steps: int = 16,
    page_seed: int | None = None,
    match_style: bool = True,
) -> Generator[WriteProgress, None, WriteResult]:
    """Stream the writer's chunks as stroke updates; engine errors come out as :class:`JobError`.

    With a ``prime`` (a style) the network first reads the user's handwriting, then continues in it; a
    primed line starts with the pen up, as the engine's own strokes do. Without one, a page of several lines is
    written in one hand the network invents for the seed (the engine's ``page_prime``), as one person writes;
    ``page_seed``: these lines belong to a page of several written with that seed (a line written again), so
    they take that page's hand. ``match_style``: a style's letter height, width and slant are matched (the
    engine's ``style_correction``; an invented hand is left as the network wrote it).
    """
    try:
        started = time.perf_counter()
        clean, per_line_notices = writer.prepare(texts)
        styled = prime is not None
        if prime is None and page_seed is not None:
            prime = writer.invented_hand(page_seed, bias)
        prime = writer.page_prime(clean, prime, True, seed, bias)
        notices = sorted({n for ns in per_line_notices for n in ns} | set(writer.style_notices(prime)))
        if match_style and styled and not writer.knows_style_correction(prime, bias):
            yield WriteProgress([], [False] * len(clean), 0, status=MEASURING_STATUS)
            writer.style_correction(prime, bias)
        builders = [LineStrokes(pen_down_at_start=prime is None) for _ in clean]
        stopped_by_window = np.zeros(len(clean), bool)
        windows: list[list[np.ndarray]] = [[] for _ in clean]
        params: list[list[MixtureParams]] = [[] for _ in clean]
        offsets_so_far: list[list[np.ndarray]] = [[] for _ in clean]
        stream = writer.stream(
            clean,
            bias=bias,
            seed=seed,
            prime=prime,
            chunk_steps=chunk_steps,
            record=True,
            match_style=match_style and styled,  # a style's, not the hand invented for a page without one
        )
        for chunk in stream:
            updates = []
            for i, offsets in enumerate(chunk.offsets):
                if len(offsets):
                    closed = builders[i].add(offsets)
                    updates.append(LineUpdate(i, closed, list(builders[i].open)))
                    offsets_so_far[i].append(offsets)
                    if chunk.params is not None:
                        params[i].append(chunk.params[i])
                    if chunk.window is not None and len(chunk.window[i]):
                        windows[i].append(chunk.window[i])
            stopped_by_window = chunk.stopped_by_window
            yield WriteProgress(updates, [bool(d) for d in chunk.done], chunk.steps, chunk.window)
        capped = [i for i, by_window in enumerate(stopped_by_window) if not by_window]
        seconds = time.perf_counter() - started
        lines = [b.strokes for b in builders]
        recording = None
        if all(params):
            recording = Recording(
                [_join(w, np.zeros((0, 0))) for w in windows],
                [_join_params(p) for p in params],
                [_join(o, np.zeros((0, 3), np.float32)) for o in offsets_so_far],
                tuple(writer.normalizer.mean),
                tuple(writer.normalizer.std),
            )
        return WriteResult(clean, lines, bias, seed, notices, capped, seconds, primed=styled, recording=recording)
    except Exception as exc:  # GeneratorExit (cancellation) is a BaseException and passes through
        raise JobError(readable_error(exc)) from exc


Callback = Callable[[Any], None]


class _Signals(QObject):
    """Created on the UI thread, so what a worker emits is queued to the UI thread's event loop."""

    yielded = Signal(object)
    returned = Signal(object)
    errored = Signal(object)
    finished = Signal()


class _Worker(QRunnable):
    """Runs ``func(*args)`` on the thread pool. A generator's values are emitted one by one; :meth:`quit` stops it
    before its next value (closing it, so its ``finally`` blocks run on its own thread)."""

    def __init__(self, func: Callable[..., Any], args: tuple) -> None:
        super().__init__()
        self.signals = _Signals()
        self._func, self._args = func, args
        self._abort = threading.Event()

    def quit(self) -> None:
        self._abort.set()

    def start(self) -> None:
        QThreadPool.globalInstance().start(self)

    def run(self) -> None:
        try:
            result = self._func(*self._args)
            if inspect.isgenerator(result):
                result = self._drain(result)
            if not self._abort.is_set():
                self.signals.returned.emit(result)
        except Exception as exc:  # noqa: BLE001 - reported through errored, in words, by the runner
            self.signals.errored.emit(exc)
        self.signals.finished.emit()

    def _drain(self, generator: Generator) -> Any:
        try:
            while not self._abort.is_set():
                self.signals.yielded.emit(next(generator))
        except StopIteration as stop:
            return stop.value
        generator.close()
        return None


@dataclass(eq=False)
class _Job:
    func: Callable[..., Any]
    args: tuple
    on_yield: Callback | None
    on_return: Callback | None
    on_error: Callable[[str], None] | None
    cancelled: bool = False


class JobRunner(QObject):
    """Runs one background job at a time; a new job cancels the one in flight."""

    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._job: _Job | None = None
        self._worker: _Worker | None = None
        self._pending: _Job | None = None
        self._closed = False
        self.cancelled_count = 0

    @property
    def busy(self) -> bool:
        return self._job is not None or self._pending is not None

    @property
    def running(self) -> Callable[..., Any] | None:
        """The function of the job in flight (a cancelled one included, until it has finished), or None."""
        return self._job.func if self._job is not None else None

    def submit(
        self,
        func: Callable[..., Any],
        *args: Any,
        on_yield: Callback | None = None,
        on_return: Callback | None = None,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        """Run ``func(*args)`` (a plain or generator function) in a worker thread; callbacks run in this thread."""
        if self._closed:
            return
        job = _Job(func, args, on_yield, on_return, on_error)
        if self._pending is not None:
            self._pending.cancelled = True
            self.cancelled_count += 1
        if self._job is None:
            self._pending = None
            self._start(job)
        else:
            self._cancel_current()
            self._pending = job  # starts when the cancelled worker reports it has finished

    def cancel(self) -> None:
        """Stop the running job (at its next chunk) and forget any waiting one."""
        if self._pending is not None:
            self._pending.cancelled = True
            self._pending = None
            self.cancelled_count += 1
        self._cancel_current()

    def shutdown(self, msecs: int = 5000) -> bool:
        """Cancel everything and wait for the worker thread, so nothing outlives the window."""
        self._closed = True
        self.cancel()
        stopped = QThreadPool.globalInstance().waitForDone(msecs)
        self._job = self._worker = None
        return stopped

    def _cancel_current(self) -> None:
        if self._job is not None and not self._job.cancelled:
            self._job.cancelled = True
            self.cancelled_count += 1
            if self._worker is not None:
                self._worker.quit()

    def _start(self, job: _Job, announce: bool = True) -> None:
        self._job = job
        worker = _Worker(job.func, job.args)
        worker.signals.yielded.connect(partial(self._deliver, job, "on_yield"))
        worker.signals.returned.connect(partial(self._deliver, job, "on_return"))
        worker.signals.errored.connect(partial(self._deliver_error, job))
        worker.signals.finished.connect(partial(self._finished, job))
        self._worker = worker
        worker.start()
        if announce:
            self.busy_changed.emit(True)

    def _live(self, job: _Job) -> bool:
        # After shutdown the widgets behind the callbacks may be gone; queued signals must not reach them.
        return job is self._job and not job.cancelled and not self._closed

    def _deliver(self, job: _Job, which: str, value: Any) -> None:
        callback = getattr(job, which)
        if self._live(job) and callback is not None:
            callback(value)

    def _deliver_error(self, job: _Job, exc: BaseException) -> None:
        if self._live(job) and job.on_error is not None:
            job.on_error(readable_error(exc))

    def _finished(self, job: _Job) -> None:
        if job is not self._job or self._closed:
            return
        self._job, self._worker = None, None
        pending, self._pending = self._pending, None
        if pending is not None and not pending.cancelled and not self._closed:
            self._start(pending, announce=False)
        else:
            self.busy_changed.emit(False)
