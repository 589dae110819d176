"""Dynamic evaluation of the text network (Graves 2013, section 3.2): score a segment, then adapt on it."""

from __future__ import annotations

import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from engine.cli import main  # noqa: E402
from engine.text.data import Vocabulary, held_out_text  # noqa: E402
from engine.text.evaluation import dynamic_score_ids, score_ids  # noqa: E402
from engine.text.model import TextConfig, TextNet  # noqa: E402
from engine.text.model_file import save_text_model  # noqa: E402

EVAL_LINE = re.compile(r"^bpc=(?P<bpc>\d+\.\d+) nats_per_char=(?P<nats>\d+\.\d+) chars=(?P<chars>\d+)$")


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def toy_net(vocab_size: int = 5, seed: int = 0, dropout: float = 0.0) -> TextNet:
    torch.manual_seed(seed)
    return TextNet(TextConfig(vocab_size=vocab_size, hidden=16, layers=2, dropout=dropout)).eval()


def repetitive_ids(n: int = 1200) -> np.ndarray:
    """A short phrase repeated: an untrained network learns it as it reads."""
    pattern = np.array([0, 1, 2, 3, 4, 2, 1, 0, 3], dtype=np.int64)
    return np.resize(pattern, n)


def weights_of(net: TextNet) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


@pytest.mark.parametrize("rule, lr", [("sgd", 2.0), ("rms", 1e-2)])
def test_dynamic_beats_static_on_repetitive_text(rule, lr):
    net, ids = toy_net(), repetitive_ids()
    static = score_ids(net, ids, chunk=20)
    dynamic = dynamic_score_ids(net, ids, segment=20, lr=lr, rule=rule)
    assert dynamic.chars == static.chars == len(ids) - 1
    assert dynamic.nats_per_char < 0.8 * static.nats_per_char


@pytest.mark.parametrize("rule", ["sgd", "rms"])
def test_zero_learning_rate_is_the_static_score(rule):
    net, ids = toy_net(seed=1), repetitive_ids(400)
    static = score_ids(net, ids, chunk=25)
    dynamic = dynamic_score_ids(net, ids, segment=25, lr=0.0, rule=rule)
    assert dynamic.chars == static.chars
    assert abs(dynamic.nats - static.nats) < 1e-9


@pytest.mark.parametrize("rule, lr", [("sgd", 1.0), ("rms", 1e-2)])
def test_the_callers_network_is_not_changed(rule, lr):
    net = toy_net(seed=2, dropout=0.5)
    before = weights_of(net)
    net.train()
    dynamic_score_ids(net, repetitive_ids(300), segment=20, lr=lr, rule=rule)
    for name, value in net.state_dict().items():
        assert torch.equal(value, before[name]), name
    assert net.training  # its mode is left as it was too
    assert all(p.grad is None for p in net.parameters())


def test_dropout_is_off_while_scoring_and_adapting():
    ids = repetitive_ids(300)
    with_dropout = dynamic_score_ids(toy_net(seed=3, dropout=0.9).train(), ids, segment=20, lr=0.5, rule="sgd")
    without = dynamic_score_ids(toy_net(seed=3, dropout=0.0), ids, segment=20, lr=0.5, rule="sgd")
    assert with_dropout.nats == without.nats


@pytest.mark.parametrize("rule, lr", [("sgd", 0.5), ("rms", 3e-3)])
def test_a_segment_is_scored_before_the_model_trains_on_it(rule, lr):
    """The nats up to position k never depend on the characters after k."""
    net, segment, k = toy_net(seed=4), 20, 200
    ids = repetitive_ids(500)
    changed = ids.copy()
    changed[k + 1 :] = np.random.default_rng(0).integers(0, 5, len(ids) - k - 1)
    first, second = [], []
    dynamic_score_ids(net, ids, segment=segment, lr=lr, rule=rule, partial=first)
    dynamic_score_ids(net, changed, segment=segment, lr=lr, rule=rule, partial=second)
    done = k // segment  # segments wholly within ids[: k + 1] (inputs and targets)
    assert first[:done] == second[:done]
    assert first[-1] != second[-1]


def test_the_command_defaults_are_the_evaluation_defaults():
    from engine.cli import text_commands
    from engine.text import evaluation

    assert text_commands.DEFAULT_DYNAMIC_RULE == evaluation.DEFAULT_DYNAMIC_RULE
    assert text_commands.DEFAULT_DYNAMIC_SEGMENT == evaluation.DEFAULT_DYNAMIC_SEGMENT
    assert text_commands.DEFAULT_DYNAMIC_DECAY == evaluation.DEFAULT_DYNAMIC_DECAY


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="rule"):
        dynamic_score_ids(toy_net(), repetitive_ids(50), rule="adam")
    with pytest.raises(ValueError, match="segment"):
        dynamic_score_ids(toy_net(), repetitive_ids(50), segment=0)


def test_eval_text_dynamic_command(tmp_path, capsys):
    chars = "abcde"
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(chars[i] for i in repetitive_ids(2000)), encoding="utf-8")
    net = toy_net(seed=5)
    meta = {"config": net.config.to_dict(), "vocabulary": Vocabulary(chars).to_dict()}
    model = tmp_path / "toy.npz"
    save_text_model(model, meta, {k: v.numpy() for k, v in net.state_dict().items()}, dtype=np.float32)
    assert main(["eval", "text", "--corpus", str(corpus), "--model", str(model)]) == 0
    static_lines = capsys.readouterr().out.strip().splitlines()
    static = EVAL_LINE.match(static_lines[-1])
    assert static and len(static_lines) == 1
    argv = ["eval", "text", "--corpus", str(corpus), "--model", str(model), "--dynamic", "--segment", "20"]
    assert main([*argv, "--dynamic-rule", "sgd", "--dynamic-lr", "0.5"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    dynamic = EVAL_LINE.match(lines[-1])
    assert dynamic and int(dynamic["chars"]) == int(static["chars"]) == len(held_out_text(corpus)) - 1
    assert lines[-2].startswith("dynamic evaluation:") and "lr=0.5" in lines[-2] and "segment=20" in lines[-2]
    assert float(dynamic["nats"]) < float(static["nats"])
    assert main([*argv[:-2], "--segment", "0"]) == 2
