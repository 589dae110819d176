"""What every trainer here shares (needs torch): atomic checkpoint writes, compact optimiser state,
and stopping on Ctrl+C / SIGTERM after the step in progress."""

from __future__ import annotations

import io
import signal
import threading
from pathlib import Path

import torch
from tqdm import tqdm

from engine.atomic import atomic_write_bytes


def torch_save_atomic(obj, path: Path) -> None:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def optimizer_to_bf16(state: dict) -> dict:
    """Adam's moments in bf16 for compact checkpoints: bf16 keeps fp32's range, while the second moments
    (~1e-10) would underflow to 0 in fp16."""
    out = {"param_groups": state["param_groups"], "state": {}}
    for key, value in state["state"].items():
        out["state"][key] = {
            k: (v.to(torch.bfloat16) if torch.is_tensor(v) and v.is_floating_point() and v.dim() > 0 else v)
            for k, v in value.items()
        }
    return out


def optimizer_to_fp32(state: dict) -> dict:
    out = {"param_groups": state["param_groups"], "state": {}}
    for key, value in state["state"].items():
        out["state"][key] = {
            k: (v.float() if torch.is_tensor(v) and v.dtype == torch.bfloat16 else v) for k, v in value.items()
        }
    return out


class StopRequest:
    """While active, Ctrl+C and SIGTERM only ask the loop to stop (it checks ``requested`` between steps
    and saves); a second Ctrl+C stops at once. Outside the main thread signals cannot be caught: no-op."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict = {}

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        tqdm.write("stopping after this step (press Ctrl+C again to stop at once)")

    def __enter__(self) -> StopRequest:
        self.requested = False
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
