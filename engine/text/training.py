"""Training the text network: truncated backpropagation through time over parallel streams.

The training text is cut into ``batch_size`` contiguous streams; each step takes the next ``seq_len``
characters of every stream, starting from the hidden state the previous segment left (detached, so
gradients stop at segment boundaries). An epoch ends when the streams are used up; the state is then
reset. A run folder holds ``last.pt`` (exact: fp32 weights, optimiser, stream position and carried
state), ``last-compact.pt`` (fp16 weights, bf16 optimiser moments), ``best.npz`` (best by validation
bits per character, in the shipped format) and ``history.jsonl``.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from engine.text.data import TextCorpus, Vocabulary
from engine.text.evaluation import score_ids
from engine.text.model import TextConfig, TextNet
from engine.text.model_file import save_text_model
from engine.training_support import StepLoop, StopRequest, optimizer_to_bf16, optimizer_to_fp32, torch_save_atomic


@dataclass
class TextTrainSettings:
    batch_size: int = 32
    seq_len: int = 100
    learning_rate: float = 2e-3
    grad_norm: float = 5.0
    seed: int = 0
    validate_chars: int = 20000  # 0: no validation
    train_on_validation: bool = False  # train on the first 90% (no validation): set when the corpus is built
    validate_minutes: float = 5.0
    checkpoint_minutes: float = 5.0
    threads: int = 0


@dataclass
class TextTrainerState:
    step: int = 0
    epoch: int = 0
    position: int = 0  # segments done in this epoch
    wall_time: float = 0.0
    best_validation_bpc: float = math.inf
    history: list[dict] = field(default_factory=list)


def stream_segments(n_chars: int, batch_size: int, seq_len: int) -> tuple[int, int]:
    """(stream length, segments per epoch) for a text of ``n_chars`` cut into ``batch_size`` streams."""
    length = n_chars // batch_size
    segments = (length - 1) // seq_len
    if segments < 1:
        raise ValueError(
            f"the training text ({n_chars} characters) is too short for {batch_size} streams of "
            f"segments of {seq_len}: use a smaller --batch-size or --seq-len"
        )
    return length, segments


class TextTrainer(StepLoop):
    def __init__(
        self, config: TextConfig, corpus: TextCorpus, run_dir: str | Path, settings: TextTrainSettings, device="cpu"
    ):
        if config.vocab_size != len(corpus.vocab):
            raise ValueError("the network's vocabulary size differs from the corpus's")
        self.config, self.corpus, self.settings = config, corpus, settings
        self.run_dir = Path(run_dir)
        self.device = torch.device(device)
        if settings.threads:
            torch.set_num_threads(settings.threads)
        torch.manual_seed(settings.seed)
        self.model = TextNet(config).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=settings.learning_rate)
        self.state = TextTrainerState()
        self.hidden = self.model.initial_state(settings.batch_size, self.device)
        self._stop = StopRequest()
        self._layout()

    def _layout(self) -> None:
        s = self.settings
        self.stream_length, self.segments = stream_segments(len(self.corpus.train), s.batch_size, s.seq_len)
        data = torch.as_tensor(self.corpus.train[: self.stream_length * s.batch_size], dtype=torch.int64)
        self.streams = data.view(s.batch_size, self.stream_length).to(self.device)

    @property
    def vocab(self) -> Vocabulary:
        return self.corpus.vocab

    # ----- metadata and files ------------------------------------------------------------------------
    def meta(self) -> dict:
        s = self.settings
        return {
            "config": self.config.to_dict(),
            "vocabulary": self.vocab.to_dict(),
            "training": {
                "step": self.state.step,
                "epoch": self.state.epoch,
                "wall_time_s": round(self.state.wall_time, 1),
                "best_validation_bpc": self.state.best_validation_bpc,
                "batch_size": s.batch_size,
                "seq_len": s.seq_len,
                "learning_rate": s.learning_rate,
                "device": str(self.device),
                "data": self.corpus.summary(),
            },
        }

    def save(self, compact_too: bool = True) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        full = {
            "meta": self.meta(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "trainer": {k: getattr(self.state, k) for k in TextTrainerState.__dataclass_fields__},
            "hidden": tuple(t.detach().cpu().clone() for t in self.hidden),
            "settings": dict(self.settings.__dict__),
            "torch_rng": torch.random.get_rng_state(),  # dropout masks: exact resume
        }
        torch_save_atomic(full, self.run_dir / "last.pt")
        if compact_too:
            compact = dict(full)
            compact["model"] = {k: v.half() for k, v in full["model"].items()}
            compact["optimizer"] = optimizer_to_bf16(full["optimizer"])
            compact["hidden"] = tuple(t.half() for t in full["hidden"])
            torch_save_atomic(compact, self.run_dir / "last-compact.pt")

    def load(self, path: str | Path, learning_rate: float | None = None) -> None:
        """Resume from :meth:`save`'s checkpoint: exact from last.pt, warm from last-compact.pt.

        The stream layout (batch size, segment length) and seed are the run's own."""
        ckpt = torch.load(path, map_location=self.device, weights_only=False)
        if ckpt["meta"]["vocabulary"] != self.vocab.to_dict():
            raise ValueError(f"{path} was trained on a corpus with another vocabulary")
        self.model.load_state_dict({k: v.float() for k, v in ckpt["model"].items()})
        self.optimizer.load_state_dict(optimizer_to_fp32(ckpt["optimizer"]))
        self.state = TextTrainerState(**ckpt["trainer"])
        saved = ckpt.get("settings", {})
        for key in ("seed", "batch_size", "seq_len"):
            setattr(self.settings, key, saved.get(key, getattr(self.settings, key)))
        self._layout()
        self.hidden = tuple(t.float().to(self.device) for t in ckpt["hidden"])
        if "torch_rng" in ckpt:
            torch.random.set_rng_state(ckpt["torch_rng"])
        if learning_rate is not None:
            for group in self.optimizer.param_groups:
                group["lr"] = learning_rate
        self.settings.learning_rate = self.optimizer.param_groups[0]["lr"]

    def export_model(self, path: str | Path) -> None:
        weights = {k: v.detach().cpu().float().numpy() for k, v in self.model.state_dict().items()}
        save_text_model(path, self.meta(), weights)

    # ----- steps ---------------------------------------------------------------------------------------
    def train_step(self) -> float:
        """One segment of every stream; returns the mean nats per character."""
        s = self.settings
        self.model.train()
        start = self.state.position * s.seq_len
        x = self.streams[:, start : start + s.seq_len]
        y = self.streams[:, start + 1 : start + s.seq_len + 1]
        logits, hidden = self.model(x, self.hidden)
        loss = F.cross_entropy(logits.reshape(-1, self.config.vocab_size), y.reshape(-1))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), s.grad_norm)
        self.optimizer.step()
        self.hidden = tuple(t.detach() for t in hidden)
        return float(loss.detach())

    def validate(self) -> float:
        """Bits per character on (the start of) the validation slice."""
        limit = self.settings.validate_chars or None
        return score_ids(self.model, self.corpus.validation, limit=limit).bpc

    # ----- the shared loop's hooks (engine.training_support.StepLoop) -----
    def epoch_plan(self) -> range:
        return range(self.segments)

    def step_on(self, item: int) -> float:
        return self.train_step()  # the streams' position in the text is state.position

    def start_epoch(self) -> None:
        self.hidden = self.model.initial_state(self.settings.batch_size, self.device)

    def progress_fields(self, recent: list[float]) -> dict:
        return {"bpc": f"{np.mean(recent[-50:]) / math.log(2):.3f}"}

    def _record(self, recent: list[float]) -> None:
        entry = {
            "step": self.state.step,
            "epoch": self.state.epoch,
            "wall_time_s": round(self.state.wall_time, 1),
            "train_bpc": float(np.mean(recent)) / math.log(2) if recent else None,
        }
        if self.settings.validate_chars > 0:
            entry["validation_bpc"] = self.validate()
        self.state.history.append(entry)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.run_dir / "history.jsonl", "a") as handle:
            handle.write(json.dumps(entry) + "\n")
        tqdm.write(json.dumps(entry))
        val = entry.get("validation_bpc")
        if val is not None and val < self.state.best_validation_bpc:
            self.state.best_validation_bpc = val
            self.export_model(self.run_dir / "best.npz")
        elif val is None:
            self.export_model(self.run_dir / "best.npz")

    def _finish(self, start: float, base_wall: float, recent: list[float]) -> None:
        self.state.wall_time = base_wall + time.monotonic() - start
        if recent:
            self._record(recent)
        self.save()
