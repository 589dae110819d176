"""Dream: the numpy text step matches torch's, sampling stops at a sentence and is seeded, what the handwriting
model cannot write is mapped or dropped with a notice, and the job streams text then hands lines to writing."""

from __future__ import annotations

import numpy as np
import pytest

from engine.handwriting.alphabet import Alphabet
from engine.text.dream import (
    DreamJob,
    DreamRequest,
    NumpyTextStepper,
    dream_lines,
    dream_stream,
    fit_to_alphabet,
    load_text_stepper,
    text_model_path,
    usable_prime,
)
from engine.text.model_file import load_text_model


def test_numpy_step_matches_torch(tiny_text_model_file):
    torch = pytest.importorskip("torch")
    from engine.text.model import TorchTextStepper, build_text_network

    torch.set_num_threads(1)
    model = load_text_model(tiny_text_model_file)
    ours, theirs = NumpyTextStepper(model), TorchTextStepper(build_text_network(model.weights, model.config))
    rng = np.random.default_rng(0)
    x = rng.integers(0, len(model.vocab), 3)
    state = tuple(rng.normal(0, 1, (2, 3, 8)).astype(np.float32) for _ in range(2))
    (a, (ha, ca)), (b, (hb, cb)) = ours.step(x, state), theirs.step(x, state)
    for got, expected in ((a, b), (ha, hb), (ca, cb)):
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-5)


def test_dream_is_seeded_and_stops_at_a_sentence(tiny_text_model_file):
    model, stepper = load_text_stepper(tiny_text_model_file)
    assert isinstance(stepper, NumpyTextStepper)  # no .onnx beside the tiny model
    first = "".join(dream_stream(stepper, model.vocab, "ab ", temperature=0.9, seed=4, max_chars=300))
    again = "".join(dream_stream(stepper, model.vocab, "ab ", temperature=0.9, seed=4, max_chars=300))
    other = "".join(dream_stream(stepper, model.vocab, "ab ", temperature=0.9, seed=5, max_chars=300))
    assert first == again and first != other
    assert 24 <= len(first) <= 300 + 24
    assert first.endswith(".") or first.endswith("\n\n") or len(first) >= 300
    capped = "".join(dream_stream(stepper, model.vocab, "", seed=4, max_chars=10))
    assert 10 <= len(capped) <= 10 + 24  # the last word is finished, not cut
    assert list(dream_stream(stepper, model.vocab, "", seed=4, cancelled=lambda: True)) == []


def test_the_prime_drops_what_the_text_model_does_not_know(tiny_text_model_file):
    vocab = load_text_model(tiny_text_model_file).vocab
    assert usable_prime("a  Zb\nc ", vocab) == "a b c "
    assert usable_prime("QQ", vocab) == ""


def test_characters_the_handwriting_model_lacks_are_mapped_or_dropped():
    alphabet = Alphabet("abc '-")
    text, notices = fit_to_alphabet("a\u2019b\nc.X\u2014a", alphabet)
    assert text == "a'b c-a"
    assert len(notices) == 1 and "'.'" in notices[0] and "'X'" in notices[0]
    assert fit_to_alphabet("abc", alphabet) == ("abc", [])
    lines, notices = dream_lines("ab " * 30, alphabet, line_chars=20)
    assert len(lines) > 1 and all(len(line) <= 20 for line in lines) and notices == []
    assert dream_lines("...", alphabet) == ([], ["left out characters the handwriting model cannot write: '.'"])
    # a play's speaker label is not part of the sentence; a colon inside the text stays
    assert dream_lines("ABBA:\nab ca", Alphabet("abc :"))[0] == ["ab ca"]
    assert dream_lines("ab: ca\nab", Alphabet("abc :"))[0] == ["ab: ca ab"]


def test_shipped_text_model_names():
    assert text_model_path("shakespeare").name == "text-shakespeare.npz"
    assert text_model_path("iam").name == "text-iam.npz"
    with pytest.raises(ValueError, match="unknown text model"):
        text_model_path("poe")


def test_dream_job_streams_text_then_writes_it(tiny_text_model_file, tiny_synthesis_model):
    from engine.handwriting.writer import HandwritingWriter
    from engine.jobs import GenerationRequest

    writer = HandwritingWriter.load(tiny_synthesis_model, backend="torch")
    chars, dreamt, chunks = [], [], []
    request = DreamRequest(
        tiny_text_model_file, prime="ab", seed=2, generation=GenerationRequest([], bias=1.0, seed=1, writer=writer)
    )
    job = DreamJob(request, on_text=chars.append, on_dreamt=dreamt.append, on_chunk=chunks.append).start()
    lines = job.result(timeout=60)
    assert chars and dreamt and chunks
    assert dreamt[0].text == ("ab" + "".join(chars)).strip()
    assert [line.text for line in lines] == dreamt[0].lines
    assert all(set(line.text) <= set("abc ") for line in lines)
    assert all(len(line.offsets) for line in lines)
