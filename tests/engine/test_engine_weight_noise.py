"""Weight noise in training: the loss and gradient see perturbed weights, the update lands on the clean ones."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from engine_helpers import make_tiny_trainer  # noqa: E402


def _weights(trainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


def test_off_by_default_leaves_the_weights_alone(tmp_path):
    trainer = make_tiny_trainer(tmp_path / "run")
    before = _weights(trainer)
    assert trainer.add_weight_noise() == []
    after = _weights(trainer)
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_noise_perturbs_matrices_only_by_its_deviation_and_comes_off_again(tmp_path):
    trainer = make_tiny_trainer(tmp_path / "run")
    trainer.settings.weight_noise = 0.05
    before = _weights(trainer)
    noise = trainer.add_weight_noise()
    noisy = _weights(trainer)
    diffs = torch.cat([(noisy[k] - before[k]).flatten() for k in before if before[k].dim() >= 2])
    assert diffs.numel() > 1000 and abs(float(diffs.std()) / 0.05 - 1) < 0.1
    assert all(torch.equal(noisy[k], before[k]) for k in before if before[k].dim() < 2)  # biases exact
    trainer.remove_weight_noise(noise)
    after = _weights(trainer)
    assert all(torch.allclose(after[k], before[k], atol=1e-7) for k in before)


def test_a_step_draws_the_same_noise_again_and_the_next_step_new_noise(tmp_path):
    trainer = make_tiny_trainer(tmp_path / "run")
    trainer.settings.weight_noise = 0.05
    first = trainer.add_weight_noise()
    trainer.remove_weight_noise(first)
    again = trainer.add_weight_noise()
    trainer.remove_weight_noise(again)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))  # resume redraws the same
    trainer.state.step += 1
    other = trainer.add_weight_noise()
    assert not torch.equal(first[0], other[0])


def test_the_update_lands_on_the_clean_weights(tmp_path):
    """One Adam step moves each weight by about the learning rate, noise or not; noise left in would move the
    weights by its whole deviation."""
    plain, noisy = make_tiny_trainer(tmp_path / "a"), make_tiny_trainer(tmp_path / "b")
    noisy.settings.weight_noise = 0.05
    start = _weights(plain)
    assert all(torch.equal(start[k], v) for k, v in _weights(noisy).items())  # same initial weights
    index = np.arange(8)
    loss_plain, loss_noisy = plain.train_step(index), noisy.train_step(index)
    assert loss_plain != loss_noisy  # the noisy loss was computed on other weights
    lr = plain.optimizer.param_groups[0]["lr"]
    a, b = _weights(plain), _weights(noisy)
    moved = max(float((b[k] - start[k]).abs().max()) for k in start)
    assert 0 < moved <= 1.01 * lr  # Adam's first step is at most the learning rate per weight
    assert any(not torch.equal(a[k], b[k]) for k in a)  # the noisy gradient differs
