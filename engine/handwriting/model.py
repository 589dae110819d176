"""Graves (2013) handwriting networks in PyTorch: the prediction network and the synthesis network.

Both are stacks of LSTM layers with skip connections (every layer sees the input, every layer feeds
the output) ending in a mixture density layer: ``mixtures`` bivariate Gaussians for the next pen
offset plus a Bernoulli end-of-stroke. The synthesis network adds the soft window of ``window``
Gaussians over the one-hot text: layer 1 reads the previous window, the window is computed from
layer 1, and layers 2.. read the new window (paper, section 5.1).

Speed: only layer 1 and the window must run step by step; the upper layers see a complete sequence
once the loop is done, so they run as fused ``nn.LSTM`` calls over the whole sequence.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F


@dataclass
class ModelConfig:
    kind: str = "synthesis"  # "synthesis" or "prediction"
    hidden: int = 400
    layers: int = 3
    mixtures: int = 20
    window: int = 10
    alphabet_size: int = 0
    chars_per_step: float = 0.05  # initial window speed: a window that starts at the right pace aligns fast

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    @property
    def output_size(self) -> int:
        return 1 + 6 * self.mixtures


def _clip_grad(tensor: Tensor, limit: float) -> Tensor:
    """Graves' derivative clipping: the gradient reaching ``tensor`` is clamped to [-limit, limit]."""
    if tensor.requires_grad:
        tensor.register_hook(lambda g: g.clamp(-limit, limit))
    return tensor


class HandwritingNet(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        H, A = config.hidden, config.alphabet_size
        self.synthesis = config.kind == "synthesis"
        if config.kind not in ("synthesis", "prediction"):
            raise ValueError(f"unknown model kind {config.kind!r}")
        if self.synthesis and A <= 0:
            raise ValueError("a synthesis network needs alphabet_size > 0")
        window_size = A if self.synthesis else 0
        # Layer 1 of the synthesis network runs step by step (its input includes the previous window).
        self.layer1 = nn.LSTMCell(3 + window_size, H) if self.synthesis else nn.LSTM(3, H, batch_first=True)
        self.upper = nn.ModuleList(nn.LSTM(3 + H + window_size, H, batch_first=True) for _ in range(config.layers - 1))
        if self.synthesis:
            self.window_layer = nn.Linear(H, 3 * config.window)
        self.output = nn.Linear(H * config.layers, config.output_size)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        H = self.config.hidden
        for name, param in self.named_parameters():
            if name.startswith(("layer1", "upper")) and "bias" in name:
                nn.init.zeros_(param)
                if "bias_ih" in name:
                    param.data[H : 2 * H] = 1.0  # forget gates start open
        if self.synthesis:
            K = self.config.window
            nn.init.normal_(self.window_layer.weight, std=0.01)
            bias = self.window_layer.bias.data
            bias[:K] = 0.0  # alpha ~ 1
            bias[K : 2 * K] = math.log(0.5)  # beta: a window about two characters wide
            bias[2 * K :] = math.log(self.config.chars_per_step)

    # ----- state -----------------------------------------------------------------------------------
    def initial_state(self, batch: int, device: torch.device | str = "cpu") -> dict[str, Tensor]:
        H, L = self.config.hidden, self.config.layers
        dtype = self.output.weight.dtype
        state = {
            "h": torch.zeros(L, batch, H, device=device, dtype=dtype),
            "c": torch.zeros(L, batch, H, device=device, dtype=dtype),
        }
        if self.synthesis:
            state["kappa"] = torch.zeros(batch, self.config.window, device=device, dtype=dtype)
            state["w"] = torch.zeros(batch, self.config.alphabet_size, device=device, dtype=dtype)
        return state

    def one_hot(self, chars: Tensor) -> Tensor:
        """(B, U) indices, -1 for padding -> (B, U, A) one-hot with zero rows for padding."""
        A = self.config.alphabet_size
        dtype = self.output.weight.dtype
        return F.one_hot(chars.clamp(min=0), A).to(dtype) * (chars >= 0).unsqueeze(-1).to(dtype)

    # ----- teacher-forced pass -----------------------------------------------------------------------
    def forward(
        self,
        x: Tensor,
        chars: Tensor | None = None,
        state: dict[str, Tensor] | None = None,
        return_window: bool = False,
        clip: bool = False,
    ):
        """x: (B, T, 3) inputs. Returns (mixture outputs (B, T, 1+6M), final state, phi (B, T, U) or None)."""
        B, T, _ = x.shape
        state = state if state is not None else self.initial_state(B, x.device)
        h0, c0 = state["h"], state["c"]
        hs, hn, cn = [], [], []
        phis = None
        if self.synthesis:
            if chars is None:
                raise ValueError("the synthesis network needs the text")
            text = self.one_hot(chars)
            h1_seq, w_seq, phis, (h, c, kappa, w) = self._window_loop(
                x, text, h0[0], c0[0], state["kappa"], state["w"], return_window
            )
            extra = [w_seq]
            new_state = {"kappa": kappa, "w": w}
        else:
            h1_seq, (h, c) = self.layer1(x, (h0[:1].contiguous(), c0[:1].contiguous()))
            h, c = h[0], c[0]
            extra = []
            new_state = {}
        if clip:
            h1_seq = _clip_grad(h1_seq, 10.0)
        hs.append(h1_seq)
        hn.append(h)
        cn.append(c)
        below = h1_seq
        for i, lstm in enumerate(self.upper, start=1):
            out, (h, c) = lstm(
                torch.cat([x, below, *extra], dim=-1), (h0[i : i + 1].contiguous(), c0[i : i + 1].contiguous())
            )
            if clip:
                out = _clip_grad(out, 10.0)
            hs.append(out)
            hn.append(h[0])
            cn.append(c[0])
            below = out
        y = self.output(torch.cat(hs, dim=-1))
        if clip:
            y = _clip_grad(y, 100.0)
        new_state.update(h=torch.stack(hn), c=torch.stack(cn))
        return y, new_state, phis

    def _window_loop(
        self, x: Tensor, text: Tensor, h: Tensor, c: Tensor, kappa: Tensor, w: Tensor, return_window: bool
    ):
        cell = self.layer1
        H, K = self.config.hidden, self.config.window
        U = text.shape[1]
        # Input projections for every step at once; only the recurrent part stays in the loop.
        w_x, w_w = cell.weight_ih[:, :3], cell.weight_ih[:, 3:]
        x_proj = torch.addmm(cell.bias_ih + cell.bias_hh, x.reshape(-1, 3), w_x.t()).view(x.shape[0], x.shape[1], 4 * H)
        w_rec = torch.cat([cell.weight_hh, w_w], dim=1).t()  # (H + A, 4H)
        u = torch.arange(U, device=x.device, dtype=x.dtype).view(1, 1, U)
        win_w, win_b = self.window_layer.weight.t(), self.window_layer.bias
        h_out, w_out, phi_out = [], [], []
        for x_t in x_proj.unbind(1):
            gates = torch.addmm(x_t, torch.cat([h, w], dim=1), w_rec)
            i, f, g, o = gates.chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            abk = torch.addmm(win_b, h, win_w).exp()
            alpha, beta, dk = abk.split(K, dim=1)
            kappa = kappa + dk
            phi = (alpha.unsqueeze(2) * torch.exp(-beta.unsqueeze(2) * (kappa.unsqueeze(2) - u) ** 2)).sum(1)
            w = torch.bmm(phi.unsqueeze(1), text).squeeze(1)
            h_out.append(h)
            w_out.append(w)
            if return_window:
                phi_out.append(phi)
        phis = torch.stack(phi_out, 1) if return_window else None
        return torch.stack(h_out, 1), torch.stack(w_out, 1), phis, (h, c, kappa, w)


# ----- mixture density output ------------------------------------------------------------------------
def split_params(y: Tensor, mixtures: int):
    """Raw outputs -> (eos logit, mixture logits, mu1, mu2, log sigma1, log sigma2, rho)."""
    M = mixtures
    e, logit_pi, mu1, mu2, ls1, ls2, rho_hat = torch.split(y, [1, M, M, M, M, M, M], dim=-1)
    return e.squeeze(-1), logit_pi, mu1, mu2, ls1, ls2, torch.tanh(rho_hat)


def mixture_nll(y: Tensor, target: Tensor, mask: Tensor, mixtures: int) -> Tensor:
    """Negative log-likelihood (nats) of target (B, T, 3) per step, zero where mask is 0."""
    e_logit, logit_pi, mu1, mu2, ls1, ls2, rho = split_params(y, mixtures)
    x1, x2, eos = target[..., 0:1], target[..., 1:2], target[..., 2]
    z1 = (x1 - mu1) * torch.exp(-ls1)
    z2 = (x2 - mu2) * torch.exp(-ls2)
    one_minus_rho2 = (1 - rho * rho).clamp(min=1e-6)
    z = z1 * z1 + z2 * z2 - 2 * rho * z1 * z2
    log_n = -math.log(2 * math.pi) - ls1 - ls2 - 0.5 * torch.log(one_minus_rho2) - z / (2 * one_minus_rho2)
    log_mix = torch.logsumexp(F.log_softmax(logit_pi, dim=-1) + log_n, dim=-1)
    log_eos = -F.binary_cross_entropy_with_logits(e_logit, eos, reduction="none")
    return -(log_mix + log_eos) * mask
