"""What every trainer here shares (needs torch): atomic checkpoint writes, compact optimiser state,
and stopping on Ctrl+C / SIGTERM after the step in progress."""

from __future__ import annotations

import io
import math
import signal
import threading
import time
from pathlib import Path

import torch
from tqdm import tqdm

from engine.atomic import atomic_write_bytes


def pick_torch_device(name: str) -> str:
    """ "auto": CUDA when torch sees it, else the CPU; an explicit CUDA device that is missing is an error."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("CUDA was asked for but torch sees no CUDA device")
    return name


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


class StepLoop:
    """The training loop both trainers share: steps through epochs, validates and checkpoints on a wall-clock
    schedule, and stops cleanly (``run``). A trainer supplies its epoch plan and step, and its record."""

    # provided by the trainer
    state: object  # .step, .epoch, .position, .wall_time
    settings: object  # .validate_minutes, .checkpoint_minutes
    run_dir: Path
    _stop: StopRequest

    def epoch_plan(self) -> list:
        """What the steps of the current epoch work on (one entry per step, in order)."""
        raise NotImplementedError

    def step_on(self, item) -> float:
        """One optimiser step on an entry of the epoch plan; returns its loss."""
        raise NotImplementedError

    def start_epoch(self) -> None:
        """Called when a new epoch begins (after the first)."""

    def progress_fields(self, recent: list[float]) -> dict:
        return {}

    def _record(self, recent: list[float]) -> None:
        raise NotImplementedError

    def _finish(self, start: float, base_wall: float, recent: list[float]) -> None:
        raise NotImplementedError

    def save(self) -> None:
        raise NotImplementedError

    def run(self, minutes: float | None = None, steps: int | None = None, progress: bool = True) -> None:
        """Train until ``minutes`` of wall time or ``steps`` more steps; checkpoints along the way.

        Ctrl+C or SIGTERM asks the loop to stop after the step in progress; it then saves a checkpoint,
        so an interrupted run loses nothing and resumes exactly. A second Ctrl+C stops at once."""
        with StopRequest() as stop:
            self._stop = stop
            self._run(minutes, steps, progress)
        if stop.requested:
            tqdm.write(f"interrupted: saved a checkpoint at step {self.state.step} in {self.run_dir}")
            raise KeyboardInterrupt

    def _run(self, minutes: float | None, steps: int | None, progress: bool) -> None:
        s, state = self.settings, self.state
        start = time.monotonic()
        base_wall = state.wall_time
        last_ckpt = last_val = start
        target = state.step + steps if steps is not None else None
        bar = tqdm(total=target, initial=state.step, disable=not progress, unit="step", mininterval=10)
        recent: list[float] = []
        try:
            while True:
                plan = self.epoch_plan()
                while state.position < len(plan):
                    now = time.monotonic()
                    if (
                        self._stop.requested
                        or (target is not None and state.step >= target)
                        or (minutes is not None and now - start >= minutes * 60)
                    ):
                        self._finish(start, base_wall, recent)
                        return
                    loss = self.step_on(plan[state.position])
                    if not math.isfinite(loss):
                        raise FloatingPointError(f"training diverged at step {state.step} (loss {loss})")
                    recent.append(loss)
                    state.position += 1
                    state.step += 1
                    state.wall_time = base_wall + time.monotonic() - start
                    bar.update(1)
                    bar.set_postfix(epoch=state.epoch, **self.progress_fields(recent), refresh=False)
                    now = time.monotonic()
                    if now - last_val >= s.validate_minutes * 60:
                        self._record(recent)
                        recent = []
                        last_val = now
                    if now - last_ckpt >= s.checkpoint_minutes * 60:
                        self.save()
                        last_ckpt = now
                state.epoch += 1
                state.position = 0
                self.start_epoch()
        finally:
            bar.close()
