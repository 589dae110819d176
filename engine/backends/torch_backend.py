"""PyTorch backend: runs a handwriting model file's network step by step (imports torch)."""

from __future__ import annotations

import warnings

import numpy as np
import torch

from engine.handwriting.checkpoint import ModelFile, ModelFileError
from engine.handwriting.model import HandwritingNet, ModelConfig


def build_network(model: ModelFile, device: str = "cpu") -> HandwritingNet:
    net = HandwritingNet(ModelConfig.from_dict(model.meta["config"]))
    try:
        net.load_state_dict({k: torch.from_numpy(v) for k, v in model.weights.items()})
    except RuntimeError as exc:
        raise ModelFileError(f"the model's weights do not match its configuration: {exc}") from exc
    return net.to(device).eval()


def resolve_device(device: str = "auto") -> str:
    """ "auto" -> "cuda" when torch sees a CUDA device, else "mps" when available, else "cpu"; others unchanged."""
    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


class TorchStepper:
    """The Stepper protocol over the PyTorch network. ``device``: "auto" (CUDA, else MPS, else the CPU),
    "cpu", "cuda", "cuda:N" or "mps"; when the network cannot move there, it runs on the CPU and
    ``notices`` says why. ``description`` names the backend and device in use ("PyTorch 2.x, cpu")."""

    def __init__(self, model: ModelFile, device: str = "cpu", threads: int | None = 1):
        # One step of a small batch is latency-bound: extra threads only add synchronisation (and on a
        # busy machine, 30x slower steps were measured with torch's default thread count).
        if threads:
            torch.set_num_threads(threads)
        self.notices: list[str] = []
        wanted = resolve_device(device)
        try:
            self.net = build_network(model, wanted)
            if wanted != "cpu":  # a device that fails often fails on its first computation
                with torch.no_grad():
                    self.net(
                        torch.zeros((1, 1, 3), device=wanted),
                        torch.zeros((1, 1), dtype=torch.int64, device=wanted) if self.net.synthesis else None,
                        self.net.initial_state(1, wanted),
                    )
        except ModelFileError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of the device means: use the CPU
            if wanted == "cpu":
                raise
            text = f"PyTorch could not use the device {wanted!r} ({exc.__class__.__name__}: {exc}); using the CPU"
            self.notices.append(text)
            warnings.warn(text, RuntimeWarning, stacklevel=2)
            wanted = "cpu"
            self.net = build_network(model, wanted)
        self.device = wanted
        self.mixtures = self.net.config.mixtures
        self.synthesis = self.net.synthesis

    @property
    def description(self) -> str:
        return f"PyTorch {torch.__version__.split('+')[0]}, {self.device}"

    @torch.no_grad()
    def prime(self, inputs: np.ndarray, chars: np.ndarray):
        """Teacher-force the network over a priming sequence; ``inputs`` are the steps before the last."""
        ch = torch.from_numpy(np.ascontiguousarray(chars, np.int64)).to(self.device).unsqueeze(0)
        seq = np.concatenate([np.zeros((1, 3), np.float32), np.asarray(inputs, np.float32)])
        x = torch.from_numpy(seq).to(self.device).unsqueeze(0)
        _, state, _ = self.net(x, ch, self.net.initial_state(1, self.device))
        return state

    @torch.no_grad()
    def start(self, chars: np.ndarray, primed=None):
        B = chars.shape[0]
        ch = torch.from_numpy(np.ascontiguousarray(chars, np.int64)).to(self.device)
        if primed is None:
            return ch, self.net.initial_state(B, self.device)
        # h and c are (layers, batch, H); window tensors are (batch, ...).
        state = {
            k: (v.expand(v.shape[0], B, *v.shape[2:]) if k in ("h", "c") else v.expand(B, *v.shape[1:]))
            for k, v in primed.items()
        }
        return ch, {k: v.contiguous() for k, v in state.items()}

    @torch.no_grad()
    def step(self, x: np.ndarray, state):
        ch, st = state
        inp = torch.from_numpy(np.ascontiguousarray(x, np.float32)).to(self.device).unsqueeze(1)
        y, st, phi = self.net(inp, ch, st, return_window=self.synthesis)
        phi_np = phi[:, 0].cpu().numpy() if phi is not None else None
        return y[:, 0].cpu().numpy(), phi_np, (ch, st)

    def carried(self, state):
        """The network's state without the batch's text (as :meth:`prime` returns it)."""
        return state[1]

    def select(self, state, rows: np.ndarray):
        """Keep only batch rows ``rows`` (finished lines leave the batch)."""
        ch, st = state
        index = torch.as_tensor(np.asarray(rows, np.int64), device=self.device)
        kept = {k: (v.index_select(1, index) if k in ("h", "c") else v.index_select(0, index)) for k, v in st.items()}
        return (ch.index_select(0, index) if ch is not None else None), kept

    def row_state(self, state, row: int) -> dict:
        """A copy of batch row ``row``'s network state (a line taken back to it later: ``sampling.stream``)."""
        return {k: (v[:, row] if k in ("h", "c") else v[row]).clone() for k, v in state[1].items()}

    @torch.no_grad()
    def set_row_state(self, state, row: int, saved: dict):
        """``state`` with row ``row``'s network state put back to ``saved``."""
        ch, st = state
        st = {k: v.clone() for k, v in st.items()}  # the network's outputs may be views of one another
        for k, v in saved.items():
            if k in ("h", "c"):
                st[k][:, row] = v
            else:
                st[k][row] = v
        return ch, st
