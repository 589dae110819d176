"""Graves networks: the mixture density loss, gradients, and teacher forcing == stepping with carried state."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from engine_helpers import synthetic_sequences  # noqa: E402

from engine.handwriting.model import HandwritingNet, ModelConfig, mixture_nll, split_params  # noqa: E402
from engine.handwriting.training import collate  # noqa: E402


def tiny_config(kind: str, **overrides) -> ModelConfig:
    values = dict(kind=kind, hidden=6, layers=2, mixtures=3, window=2, alphabet_size=4, chars_per_step=0.2)
    values.update(overrides)
    return ModelConfig(**values)


def random_batch(B: int = 2, T: int = 7, U: int = 4, A: int = 4, seed: int = 0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, 3, generator=g, dtype=dtype)
    x[..., 2] = (torch.rand(B, T, generator=g) < 0.2).to(dtype)
    chars = torch.randint(0, A, (B, U), generator=g)
    chars[1, U - 1 :] = -1  # padding in the second row
    return x, chars


Float64Net = HandwritingNet  # converted with .double() where used: the network follows its weights' dtype


# ----- the loss -----------------------------------------------------------------------------------------------
def numpy_nll(y: np.ndarray, target: np.ndarray, mask: np.ndarray, M: int) -> np.ndarray:
    """Graves (2013) eq. 26 written out: -log sum_j pi_j N(x | mu_j, sigma_j, rho_j) - log Bernoulli(eos)."""
    e_hat = y[..., 0]
    logit_pi = y[..., 1 : 1 + M]
    mu1, mu2 = y[..., 1 + M : 1 + 2 * M], y[..., 1 + 2 * M : 1 + 3 * M]
    s1, s2 = np.exp(y[..., 1 + 3 * M : 1 + 4 * M]), np.exp(y[..., 1 + 4 * M : 1 + 5 * M])
    rho = np.tanh(y[..., 1 + 5 * M : 1 + 6 * M])
    pi = np.exp(logit_pi) / np.exp(logit_pi).sum(-1, keepdims=True)
    x1, x2, eos = target[..., 0:1], target[..., 1:2], target[..., 2]
    d1, d2 = (x1 - mu1) / s1, (x2 - mu2) / s2
    z = d1**2 + d2**2 - 2 * rho * d1 * d2
    density = np.exp(-z / (2 * (1 - rho**2))) / (2 * math.pi * s1 * s2 * np.sqrt(1 - rho**2))
    e = 1 / (1 + np.exp(-e_hat))
    bernoulli = np.where(eos == 1, e, 1 - e)
    return -(np.log((pi * density).sum(-1)) + np.log(bernoulli)) * mask


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_mixture_nll_matches_the_formula(dtype):
    rng = np.random.default_rng(1)
    M, B, T = 3, 3, 5
    y = rng.normal(0, 0.8, size=(B, T, 1 + 6 * M))
    target = np.concatenate([rng.normal(0, 1.5, (B, T, 2)), rng.integers(0, 2, (B, T, 1))], -1)
    mask = np.ones((B, T))
    mask[0, 3:] = 0
    mask[2, 1:] = 0
    expected = numpy_nll(y, target, mask, M)
    got = mixture_nll(*(torch.tensor(a, dtype=dtype) for a in (y, target, mask)), M)
    assert got.shape == (B, T) and got.dtype == dtype
    tol = 1e-10 if dtype == torch.float64 else 1e-4
    np.testing.assert_allclose(got.numpy(), expected, rtol=tol, atol=tol)
    assert (got.numpy()[mask == 0] == 0).all()


def test_split_params_ranges():
    y = torch.randn(4, 1 + 6 * 5) * 10
    e, logit_pi, mu1, mu2, ls1, ls2, rho = split_params(y, 5)
    assert e.shape == (4,) and all(t.shape == (4, 5) for t in (logit_pi, mu1, mu2, ls1, ls2, rho))
    assert rho.abs().max() <= 1
    torch.testing.assert_close(mu2, y[:, 1 + 10 : 1 + 15])


@pytest.mark.parametrize("kind", ["synthesis", "prediction"])
def test_loss_is_finite_on_real_batches(kind):
    seqs, alphabet, _ = synthetic_sequences(8)
    torch.manual_seed(0)
    net = HandwritingNet(tiny_config(kind, alphabet_size=len(alphabet)))
    batch = collate(seqs, np.arange(8))
    with torch.no_grad():
        y, _, _ = net(batch.inputs, batch.chars)
    nll = mixture_nll(y, batch.targets, batch.mask, net.config.mixtures)
    assert torch.isfinite(nll).all()
    assert (nll[batch.mask == 0] == 0).all()
    assert float(nll.sum()) > 0


# ----- gradients ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["synthesis", "prediction"])
@pytest.mark.parametrize("clip", [False, True])
def test_gradients_reach_every_parameter(kind, clip):
    torch.manual_seed(0)
    net = HandwritingNet(tiny_config(kind, layers=3))
    x, chars = random_batch()
    y, _, _ = net(x, chars, clip=clip)
    target = torch.roll(x, -1, dims=1)
    mixture_nll(y, target, torch.ones(x.shape[:2]), net.config.mixtures).sum().backward()
    names = [name for name, _ in net.named_parameters()]
    if kind == "synthesis":
        assert {"window_layer.weight", "window_layer.bias"} <= set(names)
    for name, param in net.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name


@pytest.mark.parametrize("kind", ["synthesis", "prediction"])
def test_gradients_match_finite_differences(kind):
    torch.manual_seed(2)
    net = Float64Net(tiny_config(kind, hidden=5, mixtures=2)).double()
    x, chars = random_batch(T=6, dtype=torch.float64)
    target = torch.roll(x, -1, dims=1)
    mask = torch.ones(x.shape[:2], dtype=torch.float64)

    def loss() -> torch.Tensor:
        y, _, _ = net(x, chars)
        return mixture_nll(y, target, mask, net.config.mixtures).sum()

    net.zero_grad()
    loss().backward()
    params = dict(net.named_parameters())
    picks = [("output.weight", (0, 1)), ("output.bias", (3,)), ("upper.0.weight_hh_l0", (2, 1))]
    if kind == "synthesis":
        K = net.config.window
        picks += [("window_layer.bias", (2 * K,)), ("window_layer.weight", (K, 0)), ("layer1.weight_ih", (1, 4))]
    else:
        picks += [("layer1.weight_ih_l0", (1, 2))]
    eps = 1e-6
    for name, index in picks:
        param = params[name]
        analytic = float(param.grad[index])
        with torch.no_grad():
            original = float(param[index])
            param[index] = original + eps
            up = float(loss())
            param[index] = original - eps
            down = float(loss())
            param[index] = original
        numeric = (up - down) / (2 * eps)
        assert abs(numeric) > 1e-6, name  # the check must not compare two zeros
        assert numeric == pytest.approx(analytic, rel=1e-5, abs=1e-8), name


def test_synthesis_network_runs_in_float64():
    net = HandwritingNet(tiny_config("synthesis")).double()
    x, chars = random_batch(dtype=torch.float64)
    y, _, _ = net(x, chars)
    assert y.dtype == torch.float64


# ----- teacher forcing and state ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["synthesis", "prediction"])
def test_teacher_forced_pass_equals_stepping_with_carried_state(kind):
    torch.manual_seed(3)
    net = HandwritingNet(tiny_config(kind, layers=3)).eval()
    x, chars = random_batch(T=9)
    with torch.no_grad():
        full, full_state, full_phi = net(x, chars, return_window=True)
        state, outs, phis = None, [], []
        for t in range(x.shape[1]):
            y, state, phi = net(x[:, t : t + 1], chars, state, return_window=True)
            outs.append(y)
            phis.append(phi)
        # and in two uneven pieces, as priming then sampling does
        first, mid_state, _ = net(x[:, :4], chars)
        second, end_state, _ = net(x[:, 4:], chars, mid_state)
    stepped = torch.cat(outs, 1)
    torch.testing.assert_close(stepped, full, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.cat([first, second], 1), full, rtol=1e-5, atol=1e-5)
    assert set(state) == set(full_state) == set(end_state)
    for key in full_state:
        torch.testing.assert_close(state[key], full_state[key], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(end_state[key], full_state[key], rtol=1e-5, atol=1e-5)
    if kind == "synthesis":
        assert full_phi.shape == (2, 9, chars.shape[1])
        torch.testing.assert_close(torch.cat(phis, 1), full_phi, rtol=1e-5, atol=1e-5)
        assert set(full_state) == {"h", "c", "kappa", "w"}
        # the window only moves forward
        assert (full_state["kappa"] > 0).all()
    else:
        assert full_phi is None
    # the state matters: starting the second piece from scratch gives different outputs
    with torch.no_grad():
        fresh, _, _ = net(x[:, 4:], chars)
    assert not torch.allclose(fresh, second)


def test_padding_positions_do_not_change_the_window_reading():
    torch.manual_seed(4)
    net = HandwritingNet(tiny_config("synthesis")).eval()
    x, chars = random_batch()
    padded = torch.cat([chars, torch.full((2, 3), -1)], 1)
    with torch.no_grad():
        y1, s1, _ = net(x, chars)
        y2, s2, _ = net(x, padded)
    # padded positions are zero rows of the one-hot text: the window reads nothing there
    torch.testing.assert_close(y1, y2)
    for key in s1:
        torch.testing.assert_close(s1[key], s2[key])
    one_hot = net.one_hot(padded)
    assert one_hot.shape == (2, padded.shape[1], 4)
    assert (one_hot[padded < 0] == 0).all() and (one_hot[padded >= 0].sum(-1) == 1).all()


def test_model_config_round_trip_and_bad_kinds():
    config = tiny_config("synthesis")
    assert ModelConfig.from_dict({**config.to_dict(), "unknown_key": 1}) == config
    assert config.output_size == 1 + 6 * config.mixtures
    with pytest.raises(ValueError, match="kind"):
        HandwritingNet(tiny_config("transcription"))
    with pytest.raises(ValueError, match="alphabet_size"):
        HandwritingNet(tiny_config("synthesis", alphabet_size=0))
