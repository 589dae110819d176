"""Training: batches, learning on synthetic strokes, exact resume from last.pt, warm resume from last-compact.pt."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from engine_helpers import make_tiny_trainer, synthetic_sequences  # noqa: E402

from engine.handwriting.checkpoint import load_model_file  # noqa: E402
from engine.handwriting.training import collate, epoch_batches  # noqa: E402


def test_epoch_batches_cover_every_line_once_in_a_seeded_order():
    lengths = np.random.default_rng(0).integers(10, 500, size=50)
    batches = epoch_batches(lengths, 8, seed=3, epoch=0)
    assert sorted(np.concatenate(batches).tolist()) == list(range(50))
    assert all(len(b) <= 8 for b in batches)
    again = epoch_batches(lengths, 8, seed=3, epoch=0)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again, strict=True))
    other = epoch_batches(lengths, 8, seed=3, epoch=1)
    assert not all(np.array_equal(a, b) for a, b in zip(batches, other, strict=True))
    # similar lengths share a batch: the spread inside batches is far below the overall spread
    assert np.mean([np.ptp(lengths[b]) for b in batches]) < 0.5 * np.ptp(lengths)


def test_collate_shifts_inputs_and_masks_padding():
    seqs, _, _ = synthetic_sequences(6)
    batch = collate(seqs, [0, 3, 5])
    lengths = [len(seqs.strokes[i]) for i in (0, 3, 5)]
    T = max(lengths)
    assert batch.inputs.shape == batch.targets.shape == (3, T, 3) and batch.mask.shape == (3, T)
    for b, (i, n) in enumerate(zip((0, 3, 5), lengths, strict=True)):
        np.testing.assert_array_equal(batch.targets[b, :n].numpy(), seqs.strokes[i])
        assert batch.mask[b].sum() == n and batch.mask[b, :n].all()
        assert (batch.inputs[b, 0] == 0).all()
        np.testing.assert_array_equal(batch.inputs[b, 1:n].numpy(), seqs.strokes[i][:-1])
        chars = batch.chars[b]
        np.testing.assert_array_equal(chars[: len(seqs.chars[i])].numpy(), seqs.chars[i])
        assert (chars[len(seqs.chars[i]) :] == -1).all()


def test_loss_decreases_on_synthetic_strokes(tmp_path):
    trainer = make_tiny_trainer(tmp_path / "run")
    everything = np.arange(len(trainer.validation_set))
    before, _ = trainer.validate(everything)
    trainer.run(steps=20, progress=False)
    after, _ = trainer.validate(everything)
    assert trainer.state.step == 20
    assert np.isfinite(before) and np.isfinite(after)
    assert after < 0.98 * before, (before, after)
    # the run folder: checkpoints, the best model and the learning curve
    for name in ("last.pt", "last-compact.pt", "best.npz", "history.jsonl"):
        assert (tmp_path / "run" / name).exists(), name
    history = [json.loads(line) for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    assert history[-1]["step"] == 20 and np.isfinite(history[-1]["validation_nll_per_line"])
    best = load_model_file(tmp_path / "run" / "best.npz")
    assert best.meta["training"]["step"] == 20 and best.meta["convention"] == "skip2"


def _parameters(trainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


def test_resume_from_last_pt_is_exact(tmp_path):
    steps = 8  # 3 batches per epoch: the halves end mid-epoch
    straight = make_tiny_trainer(tmp_path / "straight")
    straight.run(steps=steps, progress=False)

    first = make_tiny_trainer(tmp_path / "halves")
    first.run(steps=steps // 2, progress=False)  # saves last.pt when it stops
    halfway = _parameters(first)
    resumed = make_tiny_trainer(tmp_path / "halves")
    resumed.load(tmp_path / "halves" / "last.pt")
    assert (resumed.state.step, resumed.state.epoch, resumed.state.position) == (
        first.state.step,
        first.state.epoch,
        first.state.position,
    )
    assert all(torch.equal(v, halfway[k]) for k, v in resumed.model.state_dict().items())
    resumed.run(steps=steps - steps // 2, progress=False)

    assert resumed.state.step == straight.state.step == steps
    end = _parameters(straight)
    assert not all(torch.equal(v, end[k]) for k, v in halfway.items())  # training did move the weights
    for name, value in resumed.model.state_dict().items():
        assert torch.equal(value, end[name]), name
    straight_opt, resumed_opt = straight.optimizer.state_dict()["state"], resumed.optimizer.state_dict()["state"]
    for key in straight_opt:
        for field in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(straight_opt[key][field], resumed_opt[key][field]), (key, field)


def test_compact_checkpoint_is_smaller_and_resumes_warm(tmp_path):
    trainer = make_tiny_trainer(tmp_path / "run")
    trainer.run(steps=4, progress=False)
    full, compact = tmp_path / "run" / "last.pt", tmp_path / "run" / "last-compact.pt"
    assert compact.stat().st_size < full.stat().st_size
    raw = torch.load(compact, map_location="cpu", weights_only=False)
    assert all(v.dtype == torch.float16 for v in raw["model"].values())

    warm = make_tiny_trainer(tmp_path / "warm", seed=1)  # other initial weights: loading must replace them
    warm.load(compact, learning_rate=5e-4)
    assert warm.state.step == 4
    assert all(group["lr"] == 5e-4 for group in warm.optimizer.param_groups)
    for name, value in warm.model.state_dict().items():
        assert value.dtype == torch.float32
        torch.testing.assert_close(value, trainer.model.state_dict()[name], rtol=2e-3, atol=1e-3)
    moments = warm.optimizer.state_dict()["state"]
    exact = trainer.optimizer.state_dict()["state"]
    for key, value in moments.items():
        assert value["exp_avg_sq"].dtype == torch.float32
        assert (value["exp_avg_sq"] > 0).any()  # bf16 kept the tiny second moments (fp16 would flush them)
        torch.testing.assert_close(value["exp_avg_sq"], exact[key]["exp_avg_sq"], rtol=1e-2, atol=1e-12)
    warm.run(steps=2, progress=False)
    assert warm.state.step == 6


def test_training_stops_on_divergence(tmp_path, monkeypatch):
    trainer = make_tiny_trainer(tmp_path / "run")
    monkeypatch.setattr(trainer, "train_step", lambda index: float("nan"))
    with pytest.raises(FloatingPointError, match="diverged"):
        trainer.run(steps=3, progress=False)


def test_sigterm_stops_after_the_step_saves_and_resumes_exactly(tmp_path):
    import os
    import signal
    import threading

    steps = 12
    straight = make_tiny_trainer(tmp_path / "straight")
    straight.run(steps=steps, progress=False)

    interrupted = make_tiny_trainer(tmp_path / "interrupted")
    original_step = interrupted.train_step

    def step_then_signal(index):
        loss = original_step(index)
        if interrupted.state.step == 4:  # this call is step 5: the signal arrives while it finishes
            threading.Thread(target=os.kill, args=(os.getpid(), signal.SIGTERM)).start()
            threading.Event().wait(0.2)
        return loss

    interrupted.train_step = step_then_signal
    with pytest.raises(KeyboardInterrupt):
        interrupted.run(steps=steps, progress=False)
    assert 5 <= interrupted.state.step < steps
    assert signal.getsignal(signal.SIGTERM) is not None  # the previous handler is back

    resumed = make_tiny_trainer(tmp_path / "interrupted")
    resumed.load(tmp_path / "interrupted" / "last.pt")
    assert resumed.state.step == interrupted.state.step
    resumed.run(steps=steps - resumed.state.step, progress=False)
    end = _parameters(straight)
    for name, value in resumed.model.state_dict().items():
        assert torch.equal(value, end[name]), name


def test_a_run_starts_from_another_conventions_model_with_its_window_pace_rescaled(tiny_synthesis_model):
    import math

    from engine.handwriting.model import HandwritingNet, ModelConfig
    from engine.handwriting.train_run import warm_start

    model = load_model_file(tiny_synthesis_model)
    config = ModelConfig.from_dict(model.meta["config"])
    config.chars_per_step /= 2  # about twice the points per character, as the paper's convention has
    net = HandwritingNet(config)
    warm_start(net, model)
    K = config.window
    for key, value in net.state_dict().items():
        expected = model.weights[key].copy()
        if key == "window_layer.bias":
            expected[2 * K :] += math.log(0.5)
        np.testing.assert_allclose(value.numpy(), expected, atol=1e-6, err_msg=key)
    bigger = ModelConfig.from_dict({**model.meta["config"], "hidden": config.hidden + 1})
    with pytest.raises(ValueError, match="another architecture"):
        warm_start(HandwritingNet(bigger), model)


def test_line_pairs_are_chosen_when_a_compact_data_set_is_saved_not_when_used(tmp_path):
    from engine.handwriting.train_run import TrainRequest, build_trainer

    with pytest.raises(ValueError, match="when saving it"):
        build_trainer(TrainRequest(compact_data=str(tmp_path / "data.npz"), pair_lines=True))
