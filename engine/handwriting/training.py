"""Training loop for the handwriting networks: length-bucketed batches, checkpoints, exact resume.

A run lives in a folder: ``last.pt`` (exact, fp32, with optimiser state), ``last-compact.pt`` (fp16
weights and bf16 optimiser moments: small enough to commit and warm-resume from), ``best.npz`` (the
best model by validation NLL, in the shipped format) and ``history.jsonl`` (the learning curve).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from engine.handwriting.alphabet import Alphabet
from engine.handwriting.checkpoint import save_model_file
from engine.handwriting.dataset import Sequences
from engine.handwriting.model import HandwritingNet, ModelConfig, mixture_nll
from engine.handwriting.oversampling import rare_character_repeats
from engine.handwriting.preprocessing import Normalizer
from engine.handwriting.style_augmentation import StyleJitter, draw_style, restyle
from engine.training_support import StepLoop, StopRequest, optimizer_to_bf16, optimizer_to_fp32, torch_save_atomic


@dataclass
class TrainSettings:
    batch_size: int = 32
    learning_rate: float = 1e-3
    grad_norm: float = 10.0
    seed: int = 0
    validate_lines: int = 256
    validate_minutes: float = 5.0
    checkpoint_minutes: float = 5.0
    threads: int = 0  # 0: torch's default
    oversample_rare: int = 1  # lines with rare characters appear up to this many times per epoch (1: off)
    # the loss weight of a joined pair's first line (1: as any line; 0: the pair teaches only its continuation)
    pair_context_weight: float = 1.0
    # style augmentation (engine.handwriting.style_augmentation): spread of each sequence's random width,
    # height and slant, as a multiple of StyleJitter's defaults (0: off)
    style_augment: float = 0.0
    # weight noise (Graves 2013 regularises with it; this is the fixed kind, not the adaptive): the standard
    # deviation of Gaussian noise added to every weight matrix for each step's loss and gradient; the update
    # applies to the clean weights
    weight_noise: float = 0.0


@dataclass
class Batch:
    inputs: torch.Tensor  # (B, T, 3): previous step, zeros first
    targets: torch.Tensor  # (B, T, 3)
    mask: torch.Tensor  # (B, T)
    chars: torch.Tensor  # (B, U), -1 padding

    def to(self, device: torch.device) -> Batch:
        return Batch(*(t.to(device) for t in (self.inputs, self.targets, self.mask, self.chars)))


def collate(
    seqs: Sequences,
    index: list[int] | np.ndarray,
    context_weight: float = 1.0,
    restyle_with: tuple[list[np.ndarray], Normalizer] | None = None,
) -> Batch:
    """A padded batch; ``context_weight`` weighs the loss on joined pairs' first lines (Sequences.context);
    ``restyle_with``: (one 2x2 style matrix per sequence, the data's normaliser) for style augmentation."""
    strokes = [seqs.strokes[i] for i in index]
    if restyle_with is not None:
        matrices, normalizer = restyle_with
        strokes = [restyle(s, m, normalizer) for s, m in zip(strokes, matrices, strict=True)]
    chars = [seqs.chars[i] for i in index]
    B, T, U = len(index), max(len(s) for s in strokes), max(len(c) for c in chars)
    targets = np.zeros((B, T, 3), np.float32)
    mask = np.zeros((B, T), np.float32)
    text = np.full((B, U), -1, np.int64)
    for b, (s, c) in enumerate(zip(strokes, chars, strict=True)):
        targets[b, : len(s)] = s
        mask[b, : len(s)] = 1
        text[b, : len(c)] = c
    if context_weight != 1.0 and seqs.context:
        for b, i in enumerate(index):
            mask[b, : seqs.context[i]] = context_weight
    inputs = np.zeros_like(targets)
    inputs[:, 1:] = targets[:, :-1]
    return Batch(*(torch.from_numpy(a) for a in (inputs, targets, mask, text)))


def epoch_batches(
    lengths: np.ndarray, batch_size: int, seed: int, epoch: int, repeats: np.ndarray | None = None
) -> list[np.ndarray]:
    """Batches of similar length (little padding), in a random order fixed by (seed, epoch).

    ``repeats``: how many times each line appears in the epoch (engine.handwriting.oversampling)."""
    rng = np.random.default_rng([seed, epoch])
    lines = np.arange(len(lengths)) if repeats is None else np.repeat(np.arange(len(lengths)), repeats)
    jittered = np.asarray(lengths)[lines] * rng.uniform(0.9, 1.1, size=len(lines))
    order = lines[np.argsort(jittered, kind="stable")]
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


@dataclass
class TrainerState:
    step: int = 0
    epoch: int = 0
    position: int = 0  # batches done in this epoch
    wall_time: float = 0.0
    best_validation: float = math.inf
    history: list[dict] = field(default_factory=list)


class Trainer(StepLoop):
    def __init__(
        self,
        config: ModelConfig,
        alphabet: Alphabet,
        normalizer: Normalizer,
        convention: str,
        train: Sequences,
        validation: Sequences,
        run_dir: str | Path,
        settings: TrainSettings,
        device: str = "cpu",
        data_summary: dict | None = None,
    ):
        self.config, self.alphabet, self.normalizer, self.convention = config, alphabet, normalizer, convention
        self.train_set, self.validation_set = train, validation
        self.run_dir = Path(run_dir)
        self.settings = settings
        self.device = torch.device(device)
        self.data_summary = data_summary or {}
        if settings.threads:
            torch.set_num_threads(settings.threads)
        torch.manual_seed(settings.seed)
        self.model = HandwritingNet(config).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=settings.learning_rate)
        self.state = TrainerState()
        self.earlier_steps = 0  # steps of the model this run started from (--init-from), and of its ancestors
        self._stop = StopRequest()
        self.lengths = np.array([len(s) for s in train.strokes])
        self._repeats: tuple[int, np.ndarray] | None = None  # (oversample_rare, repeats per line)
        n_val = min(settings.validate_lines, len(validation))
        self.validation_index = np.arange(n_val)

    # ----- metadata and files ------------------------------------------------------------------------
    def meta(self) -> dict:
        return {
            "config": self.config.to_dict(),
            "alphabet": self.alphabet.to_dict(),
            "normalizer": self.normalizer.to_dict(),
            "convention": self.convention,
            "training": {
                "step": self.state.step,
                "earlier_steps": self.earlier_steps,
                "epoch": self.state.epoch,
                "wall_time_s": round(self.state.wall_time, 1),
                "best_validation_nll_per_line": self.state.best_validation,
                "batch_size": self.settings.batch_size,
                "learning_rate": self.settings.learning_rate,
                "oversample_rare": self.settings.oversample_rare,
                "pair_context_weight": self.settings.pair_context_weight,
                "style_augment": self.settings.style_augment,
                "weight_noise": self.settings.weight_noise,
                "device": str(self.device),
                "data": self.data_summary,
            },
        }

    def save(self, compact_too: bool = True) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        trainer = {k: getattr(self.state, k) for k in TrainerState.__dataclass_fields__}
        full = {
            "meta": self.meta(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "trainer": trainer,
            "settings": self.settings.__dict__,
        }
        torch_save_atomic(full, self.run_dir / "last.pt")
        if compact_too:
            compact = dict(full)
            compact["model"] = {k: v.half() for k, v in full["model"].items()}
            compact["optimizer"] = optimizer_to_bf16(full["optimizer"])
            torch_save_atomic(compact, self.run_dir / "last-compact.pt")

    def load(self, path: str | Path, learning_rate: float | None = None) -> None:
        """Resume from a checkpoint written by :meth:`save` (exact for last.pt, warm for compact)."""
        ckpt = torch.load(path, map_location=self.device, weights_only=False)
        self.model.load_state_dict({k: v.float() for k, v in ckpt["model"].items()})
        self.optimizer.load_state_dict(optimizer_to_fp32(ckpt["optimizer"]))
        self.state = TrainerState(**ckpt["trainer"])
        # The batch order of every epoch follows (seed, epoch, batch size): keep the run's own.
        saved = ckpt.get("settings", {})
        self.settings.seed = saved.get("seed", self.settings.seed)
        self.settings.batch_size = saved.get("batch_size", self.settings.batch_size)
        self.settings.oversample_rare = saved.get("oversample_rare", self.settings.oversample_rare)
        self.settings.pair_context_weight = saved.get("pair_context_weight", self.settings.pair_context_weight)
        self.settings.style_augment = saved.get("style_augment", self.settings.style_augment)
        self.settings.weight_noise = saved.get("weight_noise", self.settings.weight_noise)
        if learning_rate is not None:
            for group in self.optimizer.param_groups:
                group["lr"] = learning_rate

    def export_model(self, path: str | Path) -> None:
        weights = {k: v.detach().cpu().float().numpy() for k, v in self.model.state_dict().items()}
        save_model_file(path, self.meta(), weights)

    # ----- steps ---------------------------------------------------------------------------------------
    def loss(self, batch: Batch, clip: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(summed NLL over the batch, number of points)."""
        y, _, _ = self.model(batch.inputs, batch.chars, clip=clip)
        nll = mixture_nll(y, batch.targets, batch.mask, self.config.mixtures)
        return nll.sum(), batch.mask.sum()

    def train_step(self, index: np.ndarray) -> float:
        self.model.train()
        styles = self.styles_for(index)
        batch = collate(self.train_set, index, self.settings.pair_context_weight, styles).to(self.device)
        noise = self.add_weight_noise()
        total, points = self.loss(batch, clip=True)
        self.optimizer.zero_grad(set_to_none=True)
        (total / points).backward()
        self.remove_weight_noise(noise)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.settings.grad_norm)
        self.optimizer.step()
        return float(total.detach()) / len(index)

    def noisy_weights(self) -> list[torch.nn.Parameter]:
        """The weight matrices that weight noise perturbs (biases stay exact, as in Graves' networks)."""
        return [p for p in self.model.parameters() if p.dim() >= 2]

    @torch.no_grad()
    def add_weight_noise(self) -> list[torch.Tensor]:
        """Perturb the weights for this step (drawn from (seed, step): resume redraws the same); returns the
        noise so that :meth:`remove_weight_noise` restores the clean weights before the update."""
        if self.settings.weight_noise <= 0:
            return []
        seed = int(np.random.SeedSequence([self.settings.seed, self.state.step, 0x401]).generate_state(1)[0])
        generator = torch.Generator().manual_seed(seed)
        noise = []
        for weight in self.noisy_weights():
            n = torch.randn(weight.shape, generator=generator).mul_(self.settings.weight_noise).to(weight.device)
            weight.add_(n)
            noise.append(n)
        return noise

    @torch.no_grad()
    def remove_weight_noise(self, noise: list[torch.Tensor]) -> None:
        for weight, n in zip(self.noisy_weights(), noise, strict=False):
            weight.sub_(n)

    def styles_for(self, index: np.ndarray) -> tuple[list[np.ndarray], Normalizer] | None:
        """This step's random styles, one per sequence (fixed by seed and step: resuming redraws the same)."""
        if self.settings.style_augment <= 0:
            return None
        rng = np.random.default_rng([self.settings.seed, self.state.step, 0x5717E])
        jitter = StyleJitter().scaled(self.settings.style_augment)
        return [draw_style(rng, jitter) for _ in index], self.normalizer

    @torch.no_grad()
    def validate(self, index: np.ndarray | None = None, batch_size: int = 32) -> tuple[float, float]:
        """(NLL per line, NLL per point) on validation lines."""
        self.model.eval()
        index = self.validation_index if index is None else index
        lengths = np.array([len(self.validation_set.strokes[i]) for i in index])
        order = index[np.argsort(lengths)]
        total, points = 0.0, 0.0
        for start in range(0, len(order), batch_size):
            batch = collate(self.validation_set, order[start : start + batch_size]).to(self.device)
            nll, n = self.loss(batch)
            total += float(nll)
            points += float(n)
        return total / max(len(order), 1), total / max(points, 1)

    # ----- the shared loop's hooks (engine.training_support.StepLoop) -----
    def line_repeats(self) -> np.ndarray | None:
        """Times each training line appears per epoch (None: once each)."""
        most = self.settings.oversample_rare
        if most <= 1:
            return None
        if self._repeats is None or self._repeats[0] != most:
            self._repeats = (most, rare_character_repeats(self.train_set.texts, most))
        return self._repeats[1]

    def epoch_plan(self) -> list[np.ndarray]:
        return epoch_batches(
            self.lengths, self.settings.batch_size, self.settings.seed, self.state.epoch, self.line_repeats()
        )

    def step_on(self, item: np.ndarray) -> float:
        return self.train_step(item)

    def progress_fields(self, recent: list[float]) -> dict:
        return {"nll_line": f"{np.mean(recent[-20:]):.1f}"}

    def _record(self, recent: list[float]) -> None:
        val_line, val_point = self.validate()
        entry = {
            "step": self.state.step,
            "epoch": self.state.epoch,
            "wall_time_s": round(self.state.wall_time, 1),
            "train_nll_per_line": float(np.mean(recent)) if recent else None,
            "validation_nll_per_line": val_line,
            "validation_nll_per_point": val_point,
        }
        self.state.history.append(entry)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.run_dir / "history.jsonl", "a") as handle:
            handle.write(json.dumps(entry) + "\n")
        tqdm.write(json.dumps(entry))
        if val_line < self.state.best_validation:
            self.state.best_validation = val_line
            self.export_model(self.run_dir / "best.npz")

    def _finish(self, start: float, base_wall: float, recent: list[float]) -> None:
        self.state.wall_time = base_wall + time.monotonic() - start
        if recent and self.settings.validate_lines > 0:
            self._record(recent)
        self.save()
