"""Prototype speed-ups of HandwritingNet's training pass, measured against the current model and the baseline.

Each variant is a subclass of ``engine.handwriting.model.HandwritingNet`` with the same parameters (the
trainer's model is switched to it in place), so the same ``Trainer.train_step`` runs it.

- ``deferred``: layer 1's recurrent weights are used detached inside the time loop, so the backward pass
  of each step computes only the gradient for (h, w); the weight gradient is computed once, as one large
  GEMM over all steps, by a custom autograd function on the precomputed input projections (whose gradient
  is exactly the gate gradient of every step). No per-step (H+A) x 4H weight-gradient GEMM and no per-step
  accumulation of it.
- ``deferred+loop``: as ``deferred``, and the upper layers run as the same kind of loop (input projections
  for all steps as one GEMM, recurrent weights detached in the loop, their gradient as one GEMM) instead of
  ``nn.LSTM`` (oneDNN on CPU).

    python bench/train_variants.py --hidden 256 --length 350 --steps 3
    python bench/train_variants.py --check     # gradients of the variants equal the current model's
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np
import torch
from torch import Tensor

try:
    from bench.train_speed import IAM_CHARACTERS, make_baseline, make_ours, synthetic_lines
except ImportError:  # run as a script: bench/ is on sys.path
    from train_speed import IAM_CHARACTERS, make_baseline, make_ours, synthetic_lines
from engine.handwriting.model import HandwritingNet, ModelConfig, _clip_grad
from engine.handwriting.training import collate


class _DeferredWeightGrad(torch.autograd.Function):
    """Identity on the input projections ``proj`` (B, T, 4H); its backward also returns the gradient of the
    recurrent weight ``weight`` (K, 4H), used detached in the loop: sum over steps of z_t^T dgates_t, where
    ``holder[0]`` is the stacked loop inputs z (B, T, K), filled in once the loop is done."""

    @staticmethod
    def forward(ctx, proj: Tensor, weight: Tensor, holder: list) -> Tensor:
        ctx.holder = holder
        return proj.view_as(proj)

    @staticmethod
    def backward(ctx, grad: Tensor):
        z = ctx.holder[0]
        grad_weight = torch.mm(z.reshape(-1, z.shape[-1]).t(), grad.reshape(-1, grad.shape[-1]))
        return grad, grad_weight, None


def _lstm_update(gates: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    i, f, g, o = gates.chunk(4, dim=1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


class DeferredNet(HandwritingNet):
    def _window_loop(self, x, text, h, c, kappa, w, return_window):
        cell = self.layer1
        H, K = self.config.hidden, self.config.window
        U = text.shape[1]
        w_x, w_w = cell.weight_ih[:, :3], cell.weight_ih[:, 3:]
        x_proj = torch.addmm(cell.bias_ih + cell.bias_hh, x.reshape(-1, 3), w_x.t()).view(x.shape[0], x.shape[1], 4 * H)
        w_rec = torch.cat([cell.weight_hh, w_w], dim=1).t()  # (H + A, 4H)
        holder: list = []
        x_proj = _DeferredWeightGrad.apply(x_proj, w_rec, holder)
        w_rec_loop = w_rec.detach()
        u = torch.arange(U, device=x.device, dtype=x.dtype).view(1, 1, U)
        win_w, win_b = self.window_layer.weight.t(), self.window_layer.bias
        h_out, w_out, z_in, phi_out = [], [], [], []
        for x_t in x_proj.unbind(1):
            z = torch.cat([h, w], dim=1)
            z_in.append(z)
            h, c = _lstm_update(torch.addmm(x_t, z, w_rec_loop), c)
            abk = torch.addmm(win_b, h, win_w).exp()
            alpha, beta, dk = abk.split(K, dim=1)
            kappa = kappa + dk
            phi = (alpha.unsqueeze(2) * torch.exp(-beta.unsqueeze(2) * (kappa.unsqueeze(2) - u) ** 2)).sum(1)
            w = torch.bmm(phi.unsqueeze(1), text).squeeze(1)
            h_out.append(h)
            w_out.append(w)
            if return_window:
                phi_out.append(phi)
        holder.append(torch.stack(z_in, 1).detach())
        phis = torch.stack(phi_out, 1) if return_window else None
        return torch.stack(h_out, 1), torch.stack(w_out, 1), phis, (h, c, kappa, w)


def _loop_layer(lstm: torch.nn.LSTM, inp: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """One nn.LSTM layer (batch_first) as a time loop with deferred recurrent-weight gradient."""
    B, T, _ = inp.shape
    H = lstm.hidden_size
    proj = torch.addmm(lstm.bias_ih_l0 + lstm.bias_hh_l0, inp.reshape(B * T, -1), lstm.weight_ih_l0.t())
    w_rec = lstm.weight_hh_l0.t()
    holder: list = []
    proj = _DeferredWeightGrad.apply(proj.view(B, T, 4 * H), w_rec, holder)
    w_rec_loop = w_rec.detach()
    outs = [h]
    for p_t in proj.unbind(1):
        h, c = _lstm_update(torch.addmm(p_t, h, w_rec_loop), c)
        outs.append(h)
    holder.append(torch.stack(outs[:-1], 1).detach())
    return torch.stack(outs[1:], 1), h, c


class DeferredLoopNet(DeferredNet):
    def forward(self, x, chars=None, state=None, return_window=False, clip=False):
        B, T, _ = x.shape
        state = state if state is not None else self.initial_state(B, x.device)
        h0, c0 = state["h"], state["c"]
        text = self.one_hot(chars)
        h1_seq, w_seq, phis, (h, c, kappa, w) = self._window_loop(
            x, text, h0[0], c0[0], state["kappa"], state["w"], return_window
        )
        if clip:
            h1_seq = _clip_grad(h1_seq, 10.0)
        hs, hn, cn = [h1_seq], [h], [c]
        below = h1_seq
        for i, lstm in enumerate(self.upper, start=1):
            out, h, c = _loop_layer(lstm, torch.cat([x, below, w_seq], dim=-1), h0[i], c0[i])
            if clip:
                out = _clip_grad(out, 10.0)
            hs.append(out)
            hn.append(h)
            cn.append(c)
            below = out
        y = self.output(torch.cat(hs, dim=-1))
        if clip:
            y = _clip_grad(y, 100.0)
        return y, {"kappa": kappa, "w": w, "h": torch.stack(hn), "c": torch.stack(cn)}, phis


VARIANTS = {"deferred": DeferredNet, "deferred+loop": DeferredLoopNet}


def check_gradients(hidden: int = 16, length: int = 40) -> None:
    """The variants' losses and gradients equal the current model's (up to float32 rounding)."""
    lines = synthetic_lines(4, length, len(IAM_CHARACTERS))
    config = ModelConfig(hidden=hidden, alphabet_size=len(IAM_CHARACTERS), chars_per_step=0.05)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = make_ours(config, lines, tmp)
        batch = collate(lines, np.arange(4))
        reference = None
        for name, cls in [("current", HandwritingNet), *VARIANTS.items()]:
            trainer.model.__class__ = cls
            trainer.model.zero_grad()
            total, _ = trainer.loss(batch, clip=True)
            total.backward()
            grads = {k: p.grad.clone() for k, p in trainer.model.named_parameters()}
            if reference is None:
                reference = (total.item(), grads)
                continue
            worst = max(float((grads[k] - g).abs().max() / (g.abs().max() + 1e-12)) for k, g in reference[1].items())
            print(f"{name:14s} loss diff {abs(total.item() - reference[0]):.2e}, worst relative grad diff {worst:.2e}")
            assert worst < 1e-4, name


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--length", type=int, default=350)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--variants", default="current,deferred,deferred+loop,baseline")
    parser.add_argument("--check", action="store_true", help="only check the variants' gradients")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.check:
        check_gradients()
        return
    lines = synthetic_lines(32, args.length, len(IAM_CHARACTERS))
    config = ModelConfig(
        hidden=args.hidden, alphabet_size=len(IAM_CHARACTERS), chars_per_step=len(lines.chars[0]) / args.length
    )
    index = np.arange(32)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = make_ours(config, lines, tmp)
        _, baseline_step = make_baseline(config, lines, 10.0)

        def with_class(cls):
            def step(idx):
                trainer.model.__class__ = cls
                return trainer.train_step(idx)

            return step

        fns = {"current": with_class(HandwritingNet), "baseline": baseline_step}
        fns.update({name: with_class(cls) for name, cls in VARIANTS.items()})
        chosen = {name: fns[name] for name in args.variants.split(",")}
        times: dict[str, list[float]] = {name: [] for name in chosen}
        for i in range(args.steps + 1):
            for name, fn in chosen.items():
                start = time.process_time()
                fn(index)
                if i:
                    times[name].append(time.process_time() - start)
    ref = statistics.median(times["baseline"]) if "baseline" in times else None
    for name, t in times.items():
        med = statistics.median(t)
        rel = f"  ratio to baseline {med / ref:.3f}" if ref else ""
        print(f"{name:14s} median {med:6.3f} CPU s  ({' '.join(f'{x:.2f}' for x in t)}){rel}")


if __name__ == "__main__":
    main()
