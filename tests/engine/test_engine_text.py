"""Character-level text prediction: vocabulary and splits, bits per character, sampling, exact resume,
ONNX parity and the `train text` / `eval text` / `dream` commands."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from engine.cli import build_parser, main  # noqa: E402
from engine.text.data import UnknownCharacters, Vocabulary, held_out_text, load_corpus, split_text  # noqa: E402
from engine.text.evaluation import score_ids  # noqa: E402
from engine.text.model import TextConfig, TextNet, TorchTextStepper, build_text_network  # noqa: E402
from engine.text.model_file import load_text_model  # noqa: E402
from engine.text.sampling import sample_text  # noqa: E402
from engine.text.training import TextTrainer, TextTrainSettings  # noqa: E402

EVAL_LINE = re.compile(r"^bpc=(?P<bpc>\d+\.\d+) nats_per_char=(?P<nats>\d+\.\d+) chars=(?P<chars>\d+)$")

# A first-order Markov chain over three characters, and its entropy rate in bits per character.
SYMBOLS = "abc"
TRANSITIONS = np.array([[0.1, 0.8, 0.1], [0.3, 0.1, 0.6], [0.5, 0.25, 0.25]])


def markov_text(n: int, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    cdf = np.cumsum(TRANSITIONS, axis=1)
    state, out = 0, []
    for u in rng.random(n):
        state = int(np.searchsorted(cdf[state], u, side="right"))
        out.append(SYMBOLS[min(state, 2)])
    return "".join(out)


def entropy_rate_bits() -> float:
    values, vectors = np.linalg.eig(TRANSITIONS.T)
    pi = np.real(vectors[:, np.argmin(np.abs(values - 1))])
    pi /= pi.sum()
    return float(-(pi[:, None] * TRANSITIONS * np.log2(TRANSITIONS)).sum())


def tiny_trainer(
    text: str, run_dir, hidden=8, layers=2, batch_size=4, seq_len=10, lr=2e-3, dropout=0.0, **kw
) -> TextTrainer:
    corpus = split_text(text)
    settings = TextTrainSettings(batch_size=batch_size, seq_len=seq_len, learning_rate=lr, validate_chars=200, **kw)
    return TextTrainer(TextConfig(len(corpus.vocab), hidden, layers, dropout), corpus, run_dir, settings)


def test_vocabulary_splits_and_unknown_characters():
    text = "".join(chr(ord("a") + i % 7) for i in range(1000))
    corpus = split_text(text)
    assert corpus.vocab.chars == "abcdefg"
    assert len(corpus.test) == 100 and len(corpus.validation) == 50 and len(corpus.train) == 850
    assert corpus.vocab.decode(corpus.test) == text[-100:]
    assert corpus.vocab.decode(corpus.validation) == text[850:900]
    with pytest.raises(UnknownCharacters, match=r"'x', 'z'"):
        corpus.vocab.encode("abzxz")
    assert Vocabulary.from_dict(corpus.vocab.to_dict()) == corpus.vocab


def test_fixed_probability_model_scores_the_analytic_value():
    p = np.array([0.5, 0.25, 0.125, 0.125])
    net = TextNet(TextConfig(4, hidden=5, layers=2))
    with torch.no_grad():
        for param in net.parameters():
            param.zero_()
        net.output.bias.copy_(torch.as_tensor(np.log(p)))
    ids = np.random.default_rng(1).choice(4, size=2501, p=p)
    score = score_ids(net, ids, chunk=300)
    expected = -np.log(p[ids[1:]]).mean()
    assert score.chars == 2500
    assert score.nats_per_char == pytest.approx(expected, rel=1e-9)
    assert score.bpc == pytest.approx(expected / math.log(2), rel=1e-9)


def test_a_trained_tiny_model_approaches_the_source_entropy(tmp_path):
    text = markov_text(24000)
    trainer = tiny_trainer(text, tmp_path, hidden=16, layers=1, batch_size=16, seq_len=25, lr=1e-2)
    trainer.run(steps=120, progress=False)
    score = score_ids(trainer.model, trainer.corpus.test)
    assert abs(score.bpc - entropy_rate_bits()) < 0.06, (score.bpc, entropy_rate_bits())


@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_exact_resume_carries_streams_and_hidden_state(tmp_path, dropout):
    text = markov_text(3000, seed=2)
    straight = tiny_trainer(text, tmp_path / "a", dropout=dropout)
    straight.run(steps=150, progress=False)  # crosses an epoch boundary (63 segments per epoch)
    first = tiny_trainer(text, tmp_path / "b", dropout=dropout)
    first.run(steps=100, progress=False)
    # the checkpoint also restores the random state that dropout draws from
    # the stream layout (batch size, segment length) comes from the checkpoint
    resumed = tiny_trainer(text, tmp_path / "c", batch_size=7, seq_len=3, dropout=dropout)
    resumed.load(tmp_path / "b" / "last.pt")
    assert (resumed.state.step, resumed.state.position) == (100, first.state.position)
    for a, b in zip(resumed.hidden, first.hidden, strict=True):
        assert torch.equal(a, b) and a.abs().sum() > 0
    resumed.run(steps=50, progress=False)
    assert straight.state.epoch == resumed.state.epoch == 2
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    for a, b in zip(straight.hidden, resumed.hidden, strict=True):
        assert torch.equal(a, b)
    compact = tiny_trainer(text, tmp_path / "d", dropout=dropout)
    compact.load(tmp_path / "b" / "last-compact.pt")  # warm: fp16 weights, same position
    assert compact.state.step == 100


@pytest.fixture(scope="module")
def tiny_text_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("text-model")
    trainer = tiny_trainer("the quick brown fox jumps over the lazy dog. " * 60, folder, hidden=12, layers=3)
    trainer.run(steps=20, progress=False)
    path = folder / "model.npz"
    trainer.export_model(path)
    return path


def test_model_file_loads_without_torch_types(tiny_text_model):
    model = load_text_model(tiny_text_model)
    assert model.meta["format"] == "penwright-text-model" and model.meta["training"]["step"] == 20
    assert all(isinstance(w, np.ndarray) for w in model.weights.values())
    with np.load(tiny_text_model) as data:
        assert all(data[k].dtype == np.float16 for k in data.files if k.startswith("w/"))


def test_sampling_is_deterministic_with_a_seed(tiny_text_model):
    model = load_text_model(tiny_text_model)
    stepper = TorchTextStepper(build_text_network(model.weights, model.config))
    a = sample_text(stepper, model.vocab, 80, prime="the ", temperature=0.8, seed=5)
    b = sample_text(stepper, model.vocab, 80, prime="the ", temperature=0.8, seed=5)
    c = sample_text(stepper, model.vocab, 80, prime="the ", temperature=0.8, seed=6)
    assert a == b and a != c and len(a) == 80 and set(a) <= set(model.vocab.chars)
    with pytest.raises(UnknownCharacters, match="'Q'"):
        sample_text(stepper, model.vocab, 5, prime="Quick", seed=0)


def test_onnx_step_matches_torch(tiny_text_model, tmp_path):
    pytest.importorskip("onnxscript")
    from engine.text.onnx_step import TextOnnxStepper, export_text_onnx

    onnx_path = tmp_path / "model.onnx"
    manifest = export_text_onnx(tiny_text_model, onnx_path)
    assert manifest["verified_max_abs_diff"] < 1e-4
    model = load_text_model(tiny_text_model)
    torch_stepper = TorchTextStepper(build_text_network(model.weights, model.config))
    onnx_stepper = TextOnnxStepper(onnx_path)
    rng = np.random.default_rng(0)
    for batch in (1, 4):
        x = rng.integers(0, len(model.vocab), batch)
        state = tuple(rng.normal(0, 1, (3, batch, 12)).astype(np.float32) for _ in range(2))
        for got, expected in zip(
            (onnx_stepper.step(x, state)[0], *onnx_stepper.step(x, state)[1]),
            (torch_stepper.step(x, state)[0], *torch_stepper.step(x, state)[1]),
            strict=True,
        ):
            np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-5)
    # one seed, one text, whichever backend steps the network
    a = sample_text(torch_stepper, model.vocab, 60, prime="over ", seed=3)
    b = sample_text(onnx_stepper, model.vocab, 60, prime="over ", seed=3)
    assert a == b


def test_text_commands_join_the_handwriting_ones():
    parser = build_parser()
    assert parser.parse_args(["train", "handwriting", "--steps", "2"]).what == "handwriting"
    assert parser.parse_args(["eval", "handwriting"]).what == "handwriting"
    args = parser.parse_args(["train", "text", "--corpus", "x.txt", "--layers", "3"])
    assert (args.what, args.layers, args.corpus) == ("text", 3, "x.txt")
    assert parser.parse_args(["eval", "text", "--corpus", "x.txt"]).what == "text"
    assert parser.parse_args(["dream", "To be", "--chars", "9"]).prime == "To be"


def test_train_eval_and_dream_end_to_end(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(markov_text(6000, seed=4).replace("c", "c\n"), encoding="utf-8")
    run_dir = tmp_path / "run"
    argv = ["train", "text", "--corpus", str(corpus), "--run-dir", str(run_dir), "--layers", "2", "--hidden", "8"]
    argv += ["--dropout", "0.1"]
    argv += ["--seq-len", "20", "--batch-size", "8", "--threads", "1", "--no-progress"]
    assert main([*argv, "--steps", "10"]) == 0
    assert '"step": 10' in capsys.readouterr().out
    assert main([*argv, "--steps", "5", "--resume", str(run_dir / "last.pt")]) == 0
    assert '"step": 15' in capsys.readouterr().out
    model = run_dir / "best.npz"
    assert main(["eval", "text", "--corpus", str(corpus), "--model", str(model)]) == 0
    match = EVAL_LINE.match(capsys.readouterr().out.strip().splitlines()[-1])
    assert match and int(match["chars"]) == len(held_out_text(corpus)) - 1
    assert float(match["bpc"]) == pytest.approx(float(match["nats"]) / math.log(2), abs=1e-3)
    dream = ["dream", "ab", "--chars", "40", "--seed", "7", "--model", str(model), "--backend", "torch"]
    assert main(dream) == 0
    first = capsys.readouterr().out
    assert main(dream) == 0
    assert capsys.readouterr().out == first and first.startswith("ab") and len(first) >= 42
    # without torch or an exported step (the packaged app), the numpy step draws the same text
    assert main([*dream[:-1], "numpy"]) == 0 and capsys.readouterr().out == first
    assert main(dream[:-2]) == 0 and capsys.readouterr().out == first  # auto: no .onnx here -> numpy
    assert main(["dream", "xyz", "--chars", "5", "--model", str(model)]) == 2
    assert "'x', 'y', 'z'" in capsys.readouterr().err
    assert main(["eval", "text", "--corpus", str(corpus), "--model", str(tmp_path / "none.npz")]) == 2


def test_iam_training_transcriptions_dump(small_iam, tmp_path, capsys):
    from engine.handwriting.dataset import load_handwriting_data
    from engine.text.iam_text import main as dump

    out = tmp_path / "iam.txt"
    assert dump([str(out), "--data", str(small_iam.folder)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    lines = out.read_text(encoding="utf-8").splitlines()
    data = load_handwriting_data(small_iam.folder, "skip2")
    assert sorted(lines) == sorted(data.train.texts) and lines
    assert not set(lines) & (set(data.validation.texts) - set(data.train.texts))


@pytest.mark.parametrize("argv", [["train", "text"], ["eval", "text"], ["dream"], ["eval"], ["train"]])
def test_help_for_the_text_commands(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0
    assert "usage: penwright" in capsys.readouterr().out


def test_a_run_can_start_from_a_model_file_with_its_vocabulary(tiny_text_model, tmp_path):
    from engine.text.train_run import TextTrainRequest, build_text_trainer

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the lazy dog jumps over the quick brown fox. " * 40)
    request = TextTrainRequest(
        str(corpus),
        run_dir=str(tmp_path / "run"),
        init_from=str(tiny_text_model),
        dropout=0.1,
        batch_size=4,
        seq_len=20,
    )
    trainer = build_text_trainer(request)
    model = load_text_model(tiny_text_model)
    assert trainer.corpus.vocab == model.vocab and trainer.state.step == 0
    assert trainer.config.dropout == 0.1 and trainer.config.hidden == model.config.hidden
    for key, value in trainer.model.state_dict().items():
        np.testing.assert_allclose(value.numpy(), model.weights[key], atol=1e-6)
    with pytest.raises(ValueError, match="either --resume"):
        build_text_trainer(TextTrainRequest(str(corpus), init_from=str(tiny_text_model), resume="x.pt"))


def test_training_on_the_validation_slice_too_trains_on_the_first_90_percent(tmp_path):
    from engine.text.train_run import TextTrainRequest, build_text_trainer

    corpus = tmp_path / "corpus.txt"
    corpus.write_text(markov_text(6000, seed=5), encoding="utf-8")
    split = load_corpus(corpus)
    args = {"run_dir": str(tmp_path / "run"), "layers": 1, "hidden": 8, "batch_size": 4, "seq_len": 20}
    trainer = build_text_trainer(TextTrainRequest(str(corpus), train_on_validation=True, **args))
    np.testing.assert_array_equal(trainer.corpus.train, np.concatenate([split.train, split.validation]))
    np.testing.assert_array_equal(trainer.corpus.test, split.test)  # the held-out last 10% is untouched
    assert len(trainer.corpus.validation) == 0 and trainer.settings.validate_chars == 0
    trainer.run(steps=3, progress=False)
    assert "validation_bpc" not in trainer.state.history[-1] and (tmp_path / "run" / "best.npz").exists()
    assert trainer.meta()["training"]["data"]["validation_chars"] == 0
    # a resumed run keeps its split, whatever the resuming command says
    resumed = build_text_trainer(TextTrainRequest(str(corpus), resume=str(tmp_path / "run" / "last.pt"), **args))
    assert len(resumed.corpus.train) == len(trainer.corpus.train) and resumed.settings.train_on_validation
    plain = build_text_trainer(TextTrainRequest(str(corpus), **{**args, "run_dir": str(tmp_path / "plain")}))
    assert len(plain.corpus.validation) == len(split.validation) and not plain.settings.train_on_validation


def test_a_text_model_card_shows_score_curve_sample_and_terms(tiny_text_model):
    from engine.handwriting.release import curve_points
    from engine.text.release import model_card

    history = [
        {"step": s, "epoch": s // 10, "wall_time_s": 60.0 * s, "train_bpc": 3.0, "validation_bpc": 3 - s / 100}
        for s in range(1, 31)
    ]
    assert curve_points(history, rows=12)[-1] is history[-1] and len(curve_points(history, rows=12)) <= 13
    rest = (
        load_text_model(tiny_text_model).meta,
        "bpc=1.0 nats_per_char=0.7 chars=9",
        history,
        "the lazy dog",
        "penwright train text ...",
        "a CPU",
    )
    card = model_card("iam", *rest)
    assert "`bpc=1.0 nats_per_char=0.7 chars=9`" in card and "the lazy dog" in card
    assert "| 30 | 3 | 30 | 3.000 | 2.700 |" in card  # the last record always closes the curve
    assert "non-commercial research" in card  # IAM-OnDB's terms travel with weights trained on its text
    assert "dynamic evaluation" not in card
    staged = model_card(
        "shakespeare",
        *rest,
        dynamic_line="bpc=0.9 nats_per_char=0.6 chars=9",
        earlier="stage 1: 100 steps at lr 0.002",
    )
    assert "dynamic evaluation" in staged and "`bpc=0.9 nats_per_char=0.6 chars=9`" in staged
    assert "stage 1: 100 steps at lr 0.002; then, from its weights:" in staged
    assert "the next 5% validate" in staged
    meta = load_text_model(tiny_text_model).meta
    data = {**meta["training"]["data"], "validation_chars": 0}  # a run with --train-on-validation
    on_90 = {**meta, "training": {**meta["training"], "data": data}}
    unvalidated = [{k: v for k, v in h.items() if k != "validation_bpc"} for h in history]
    card_90 = model_card("shakespeare", on_90, rest[1], unvalidated, *rest[3:])
    assert "the first 90%, nanoGPT's split" in card_90 and "the next 5% validate" not in card_90
    assert "| 30 | 3 | 30 | 3.000 | - |" in card_90


def test_gpu_burst_trains_scores_and_leaves_only_small_files(tmp_path, capsys):
    """The GPU burst's whole path, on the CPU: it validates per chunk, lowers the rate after a plateau, scores
    the best model on the held-out text and leaves no checkpoints (they would not come back)."""
    import json

    from engine.text import gpu_burst

    corpus = tmp_path / "corpus.txt"
    corpus.write_text(markov_text(6000, seed=5), encoding="utf-8")
    out = tmp_path / "out"
    argv = ["--corpus", str(corpus), "--out", str(out), "--layers", "1", "--hidden", "8", "--batch-size", "8"]
    # at a rate this small fp32 weights do not move: no check after the first is better, so the rate drops
    argv += ["--seq-len", "20", "--lr", "1e-12", "--minutes", "0.08", "--validate-minutes", "0.01", "--patience", "1"]
    argv += ["--max-decays", "2", "--device", "cpu"]
    assert gpu_burst.main(argv) == 0
    summary = json.loads((out / "burst.json").read_text())
    assert sorted(p.name for p in out.iterdir()) == ["best.npz", "burst.json", "burst.log", "history.jsonl"]
    assert len(summary["lr_changes"]) == 2 and summary["lr_changes"][1]["lr"] == pytest.approx(1e-12 * 0.3**2)
    match = EVAL_LINE.match(summary["held_out"])
    assert match and int(match["chars"]) == len(held_out_text(corpus)) - 1
    assert main(["eval", "text", "--corpus", str(corpus), "--model", str(out / "best.npz")]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == summary["held_out"]  # what `eval text` says


def test_training_on_a_missing_gpu_says_so(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(markov_text(3000), encoding="utf-8")
    argv = ["train", "text", "--corpus", str(corpus), "--run-dir", str(tmp_path / "run"), "--device", "cuda"]
    assert main([*argv, "--steps", "1", "--no-progress"]) != 0
    assert "CUDA was asked for but torch sees no CUDA device" in capsys.readouterr().err


def test_weight_drop_acts_in_training_only_and_keeps_the_weights_names():
    torch.manual_seed(0)
    plain = TextNet(TextConfig(vocab_size=5, hidden=6, layers=2))
    dropped = TextNet(TextConfig(vocab_size=5, hidden=6, layers=2, weight_drop=0.5))
    assert plain.state_dict().keys() == dropped.state_dict().keys()  # files and the exported step unchanged
    dropped.load_state_dict(plain.state_dict())
    x = torch.randint(0, 5, (2, 7))
    dropped.eval(), plain.eval()
    assert torch.equal(dropped(x)[0], plain(x)[0])  # evaluation uses the full weights
    dropped.train()
    a, b = dropped(x)[0], dropped(x)[0]
    assert not torch.allclose(a, b) and not torch.allclose(a, plain(x)[0])  # a new mask per forward pass
    a.sum().backward()
    for lstm in dropped.lstms:
        assert lstm.weight_hh_l0.grad is not None and lstm.weight_hh_l0.grad.abs().sum() > 0
