"""Generation jobs: write a page of lines on a background thread, streaming pen steps as they come.

The public engine API that the UI and the CLI share (no Qt here)::

    job = GenerationJob(GenerationRequest(["Hello", "world"], bias=1.0, seed=7), on_chunk=draw).start()
    job.cancel()                 # stops within one chunk
    lines = job.result()         # waits; WrittenLine list; re-raises what went wrong in the job

- All lines of a request run as ONE batch on the network.
- A style (or a ready Prime) primes the network once; the writer caches the primed state
  (:meth:`HandwritingWriter.primed_state`), so job after job in the same style skips the priming.
- A writer is not thread-safe. A job owns its writer while it runs: jobs given the same writer wait for
  one another (a per-writer lock), so do not call that writer's own methods from another thread meanwhile.
- Callbacks (``on_chunk``, ``on_progress``, ``on_done``, ``on_error``, ``on_cancelled``) run on the job's
  thread: a UI must hand them over to its own thread (Qt: a queued signal). Every chunk also goes into
  :attr:`GenerationJob.chunks` (a thread-safe queue ended by ``None``), read with :meth:`iter_chunks`.
- Progress is estimated per line as steps taken over the line's length cap (1 once it is done), averaged;
  it only increases and ends at 1.
"""

from __future__ import annotations

import queue
import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.handwriting.sampling import Chunk, MixtureParams, length_cap
from engine.handwriting.writer import HandwritingWriter, Prime, WrittenLine

if TYPE_CHECKING:
    from engine.handwriting.styles import Style


class JobCancelled(Exception):
    """The job was cancelled before it finished: :meth:`GenerationJob.result` raises it."""


@dataclass
class GenerationRequest:
    texts: list[str]  # the page's lines, written as one batch
    bias: float = 0.0
    seed: int | None = None
    style: Style | None = None
    prime: Prime | None = None  # or a ready priming sequence (a style wins when both are given)
    chunk_steps: int = 16
    record: bool = False  # keep the window (attention) weights and mixture parameters of every step
    # without a style or prime, write several lines in one hand the network invents for the seed, as a page by
    # one person (HandwritingWriter.invented_hand); False: every line a new unprimed sample
    one_hand: bool = True
    # with a style or prime: give the writing its letter height, width and slant (HandwritingWriter.style_correction)
    match_style: bool = True
    writer: HandwritingWriter | None = None  # an already loaded writer, else one is loaded in the job:
    model_path: str | Path | None = None  # (the shipped model when None)
    backend: str = "auto"
    device: str = "cpu"


_writer_locks: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_locks_guard = threading.Lock()


def _lock_of(writer: HandwritingWriter) -> threading.Lock:
    with _locks_guard:
        lock = _writer_locks.get(writer)
        if lock is None:
            lock = _writer_locks[writer] = threading.Lock()
        return lock


def _join_params(parts: list[MixtureParams]) -> MixtureParams | None:
    if not parts:
        return None
    return MixtureParams(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("eos", "pi", "mu", "sigma", "rho")))


class GenerationJob:
    def __init__(
        self,
        request: GenerationRequest,
        on_chunk: Callable[[Chunk], None] | None = None,
        on_progress: Callable[[float], None] | None = None,
        on_done: Callable[[list[WrittenLine]], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        on_cancelled: Callable[[], None] | None = None,
    ):
        self.request = request
        self.on_chunk, self.on_progress, self.on_done = on_chunk, on_progress, on_done
        self.on_error, self.on_cancelled = on_error, on_cancelled
        self.chunks: queue.Queue[Chunk | None] = queue.Queue()
        self.progress = 0.0
        self._cancel = threading.Event()
        self._finished = threading.Event()
        self._lines: list[WrittenLine] | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="penwright-generation", daemon=True)

    # ----- control ----------------------------------------------------------------------------------------------
    def start(self) -> GenerationJob:
        self._thread.start()
        return self

    def cancel(self) -> None:
        """Ask the job to stop; it does after the chunk in progress (see :meth:`wait`)."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def done(self) -> bool:
        """Finished, failed or cancelled."""
        return self._finished.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._finished.wait(timeout)

    def result(self, timeout: float | None = None) -> list[WrittenLine]:
        """Wait for the lines; re-raises the job's exception, JobCancelled, or TimeoutError after ``timeout``."""
        if not self._finished.wait(timeout):
            raise TimeoutError("the generation job is still running")
        if self._error is not None:
            raise self._error
        if self._lines is None:
            raise JobCancelled("the generation job was cancelled")
        return self._lines

    def iter_chunks(self, timeout: float | None = None) -> Iterator[Chunk]:
        """Chunks as they arrive, until the job ends (then see :meth:`result`)."""
        while True:
            chunk = self.chunks.get(timeout=timeout)
            if chunk is None:
                return
            yield chunk

    # ----- the worker -------------------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            request = self.request
            writer = request.writer
            if writer is None:
                writer = HandwritingWriter.load(
                    request.model_path, request.backend, request.device, keep_corrections=True
                )
            lock = _lock_of(writer)
            while not lock.acquire(timeout=0.05):
                if self._cancel.is_set():
                    break
            else:
                try:
                    self._generate(writer)
                finally:
                    lock.release()
        except BaseException as exc:  # noqa: BLE001 - handed to result() and on_error
            self._error = exc
            self._callback(self.on_error, exc)
        finally:
            if self._error is None and self._lines is None:
                self._callback(self.on_cancelled)
            self._finished.set()
            self.chunks.put(None)

    def _generate(self, writer: HandwritingWriter) -> None:
        request = self.request
        prime = request.prime
        if request.style is not None:
            prime = request.style.prime(writer.convention, writer.alphabet)
        clean, notices = writer.prepare(request.texts)
        caps = np.array([length_cap(len(t), writer.chars_per_step) for t in clean], float)
        B = len(clean)
        parts: list[list[np.ndarray]] = [[] for _ in range(B)]
        windows: list[list[np.ndarray]] = [[] for _ in range(B)]
        params: list[list[MixtureParams]] = [[] for _ in range(B)]
        taken = np.zeros(B)
        by_window = np.zeros(B, bool)
        finished = False
        styled = prime is not None
        prime = writer.page_prime(clean, prime, request.one_hand, request.seed, request.bias)
        notices = [[*line_notices, *writer.style_notices(prime)] for line_notices in notices]
        for chunk in writer.stream(
            clean,
            request.bias,
            request.seed,
            prime,
            chunk_steps=request.chunk_steps,
            record=request.record,
            match_style=request.match_style and styled,  # not the hand invented for a page without a style
        ):
            by_window = chunk.stopped_by_window
            for b in range(B):
                parts[b].append(chunk.offsets[b])
                taken[b] += len(chunk.offsets[b])
                if chunk.window is not None and len(chunk.window[b]):
                    windows[b].append(chunk.window[b])
                if chunk.params is not None and len(chunk.params[b].eos):
                    params[b].append(chunk.params[b])
            self.chunks.put(chunk)
            self._callback(self.on_chunk, chunk)
            per_line = np.where(chunk.done, 1.0, np.minimum(taken / caps, 0.99))
            progress = max(self.progress, float(per_line.mean()))
            if progress > self.progress or chunk.done.all():
                self.progress = progress
                self._callback(self.on_progress, progress)
            if chunk.done.all():
                finished = True
            if self._cancel.is_set() and not finished:
                return
        lines = []
        for b, text in enumerate(clean):
            offsets = np.concatenate(parts[b]) if parts[b] else np.zeros((0, 3), np.float32)
            window = np.concatenate(windows[b]) if windows[b] else None
            lines.append(
                WrittenLine(
                    text, offsets, bool(by_window[b]), notices[b], window, prime is not None, _join_params(params[b])
                )
            )
        self._lines = lines
        self._callback(self.on_done, lines)

    def _callback(self, fn, *args) -> None:
        if fn is not None:
            fn(*args)
