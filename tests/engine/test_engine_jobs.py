"""Generation jobs: streaming on a thread, progress, cancelling, errors, styles, recorded attention."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

pytest.importorskip("torch")

from engine.handwriting.alphabet import UnknownCharactersError  # noqa: E402
from engine.handwriting.styles import Style  # noqa: E402
from engine.handwriting.writer import HandwritingWriter, Prime  # noqa: E402
from engine.jobs import GenerationJob, GenerationRequest, JobCancelled  # noqa: E402

TEXTS = ["abc ab", "ca", "b a c"]


@pytest.fixture(scope="module")
def writer(tiny_synthesis_model) -> HandwritingWriter:
    return HandwritingWriter.load(tiny_synthesis_model, backend="torch")


def loop_strokes(text: str) -> list[np.ndarray]:
    """Loopy pen input (y down, pixels, 100 Hz), one loop per character of each word."""
    strokes, x0 = [], 0.0
    for word in text.split():
        t = np.arange(0.0, 0.25 * len(word), 0.01)
        phase = 2 * np.pi * t / 0.25
        strokes.append(np.column_stack([x0 + 160 * t - 12 * np.sin(phase), 30 * np.cos(phase), t]))
        x0 = strokes[-1][-1, 0] + 50
    return strokes


def test_streamed_job_gives_the_same_strokes_as_write(writer):
    written = writer.write(TEXTS, bias=0.5, seed=3, one_hand=True)  # a job writes a page in one hand
    seen: list = []
    job = GenerationJob(GenerationRequest(TEXTS, bias=0.5, seed=3, chunk_steps=5, writer=writer), on_chunk=seen.append)
    lines = job.start().result(timeout=30)
    streamed = list(job.iter_chunks(timeout=1))
    assert len(streamed) == len(seen) > 1 and streamed[-1].done.all()
    for b, (line, reference) in enumerate(zip(lines, written, strict=True)):
        np.testing.assert_array_equal(line.offsets, reference.offsets)
        np.testing.assert_array_equal(np.concatenate([c.offsets[b] for c in streamed]), reference.offsets)
        assert line.text == reference.text and line.stopped_by_window == reference.stopped_by_window
        assert line.window is None and line.params is None


def test_progress_rises_to_one_and_callbacks_run(writer):
    progress: list[float] = []
    done: list = []
    job = GenerationJob(
        GenerationRequest(TEXTS, seed=1, chunk_steps=3, writer=writer), on_progress=progress.append, on_done=done.append
    ).start()
    lines = job.result(timeout=30)
    assert len(progress) > 2 and progress[-1] == 1.0 and job.progress == 1.0
    assert all(b > a for a, b in zip(progress, progress[1:], strict=False))
    assert done == [lines] and job.done


def test_recorded_attention_and_mixture_parameters(writer):
    # unprimed lines (one_hand off): the window spans the line's own text (primed, the prime's text comes first)
    request = GenerationRequest(TEXTS[:2], seed=2, record=True, writer=writer, one_hand=False)
    lines = GenerationJob(request).start().result(timeout=30)
    for line in lines:
        steps = len(line.offsets)
        assert line.window.shape == (steps, len(line.text) + 1)
        assert line.params.pi.shape == (steps, writer.stepper.mixtures)
        assert line.params.mu.shape == (steps, writer.stepper.mixtures, 2)
        np.testing.assert_allclose(line.params.pi.sum(1), 1, rtol=1e-6)


def test_cancel_is_prompt(writer):
    long_text = ["abc " * 60]
    job = GenerationJob(GenerationRequest(long_text, seed=0, chunk_steps=4, writer=writer))
    first = threading.Event()
    chunks: list = []

    def on_chunk(chunk):
        chunks.append(chunk)
        first.set()

    job.on_chunk = on_chunk
    job.start()
    assert first.wait(10)
    started = time.monotonic()
    job.cancel()
    assert job.wait(1.0), "a cancelled job must end within a second"
    assert time.monotonic() - started < 1.0
    assert len(chunks) <= 2 and not chunks[-1].done.all()
    with pytest.raises(JobCancelled):
        job.result()


def test_errors_surface_from_result(writer):
    errors: list = []
    job = GenerationJob(GenerationRequest(["abz"], writer=writer), on_error=errors.append).start()
    with pytest.raises(UnknownCharactersError, match="'z'"):
        job.result(timeout=30)
    assert len(errors) == 1 and isinstance(errors[0], UnknownCharactersError)
    assert list(job.iter_chunks(timeout=1)) == []
    missing = GenerationJob(GenerationRequest(["abc"], model_path="/nonexistent/model.npz", backend="torch")).start()
    with pytest.raises(Exception, match="nonexistent"):
        missing.result(timeout=30)


def test_a_style_primes_once_and_the_state_is_reused(writer, monkeypatch):
    style = Style("loops", "abc ab", loop_strokes("abc ab"))
    calls = []
    original = writer.stepper.prime
    monkeypatch.setattr(writer.stepper, "prime", lambda *a: calls.append(1) or original(*a))
    first = GenerationJob(GenerationRequest(TEXTS, seed=4, style=style, writer=writer)).start().result(timeout=30)
    second = GenerationJob(GenerationRequest(TEXTS[:1], seed=4, style=style, writer=writer)).start().result(timeout=30)
    assert len(calls) == 1
    assert all(line.primed for line in first + second)
    prime = style.prime(writer.convention, writer.alphabet)
    written = writer.write(TEXTS, seed=4, prime=Prime(prime.offsets, prime.text), match_style=True)
    assert len(calls) == 1
    for a, b in zip(first, written, strict=True):
        np.testing.assert_array_equal(a.offsets, b.offsets)


def test_jobs_sharing_a_writer_take_turns(writer):
    jobs = [GenerationJob(GenerationRequest(TEXTS, seed=s, writer=writer)).start() for s in (5, 5, 6)]
    results = [job.result(timeout=60) for job in jobs]
    for a, b in zip(results[0], results[1], strict=True):
        np.testing.assert_array_equal(a.offsets, b.offsets)
    np.testing.assert_array_equal(results[2][0].offsets, writer.write(TEXTS, seed=6, one_hand=True)[0].offsets)
