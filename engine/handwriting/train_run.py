"""Set up and run a handwriting training run (what `penwright train handwriting` does)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.handwriting.checkpoint import ModelFile, load_model_file
from engine.handwriting.dataset import HandwritingData, load_compact_data, load_handwriting_data


@dataclass
class TrainRequest:
    model: str = "synthesis"
    data: str | None = None
    compact_data: str | None = None
    convention: str = "skip2"
    hidden: int = 400
    layers: int = 3
    mixtures: int = 20
    window: int = 10
    run_dir: str = "runs/synthesis"
    resume: str | None = None
    init_from: str | None = None  # a model file (.npz) whose weights start a new run, any convention
    pair_lines: bool = False  # train on each form's lines joined in pairs (teaches priming)
    single_lines_too: bool = False  # with pair_lines: the single lines as well
    oversample_rare: int | None = None  # lines with rare characters up to this many times per epoch; None: 1
    pair_context_weight: float | None = None  # loss weight of a pair's first line; None: 1 (or the checkpoint's)
    style_augment: float | None = None  # spread of random per-sequence styles; None: 0 (or the checkpoint's)
    weight_noise: float | None = None  # std of the weights' training noise; None: 0 (or the checkpoint's)
    minutes: float | None = None
    steps: int | None = None
    batch_size: int | None = None  # default 32; on resume, the checkpoint's unless given
    learning_rate: float | None = None  # default 1e-3; on resume, the checkpoint's unless given
    seed: int = 0
    threads: int = 0
    device: str = "auto"
    validate_minutes: float = 5.0
    checkpoint_minutes: float = 5.0
    validate_lines: int = 256
    progress: bool = True


def warm_start(model, init: ModelFile) -> None:
    """Copy a trained model's weights into a new run's network (same sizes, any point convention).

    Normalised offsets look alike in both conventions, so the mixture output and the LSTMs transfer;
    only the pace of the attention window differs (about twice as many points per character in the
    paper's convention), so the window's speed bias is shifted by log(new pace / old pace).
    """
    import math

    import torch

    state = model.state_dict()
    missing = sorted(set(state) - set(init.weights))
    wrong = sorted(k for k in state if k in init.weights and tuple(state[k].shape) != init.weights[k].shape)
    if missing or wrong:
        raise ValueError(
            f"the model to start from has another architecture (missing {missing[:3]}, other sizes {wrong[:3]})"
        )
    loaded = {k: torch.tensor(init.weights[k], dtype=state[k].dtype) for k in state}  # copies: init stays as read
    old_pace = float(init.meta["config"].get("chars_per_step", model.config.chars_per_step))
    if model.config.kind == "synthesis" and old_pace > 0:
        K = model.config.window
        loaded["window_layer.bias"][2 * K :] += math.log(model.config.chars_per_step / old_pace)
    model.load_state_dict(loaded)


def build_trainer(req: TrainRequest):
    import torch

    from engine.handwriting.alphabet import Alphabet
    from engine.handwriting.model import ModelConfig
    from engine.handwriting.preprocessing import Normalizer
    from engine.handwriting.training import Trainer, TrainSettings
    from engine.training_support import pick_torch_device

    ckpt_meta = None
    if req.resume and req.init_from:
        raise ValueError("give either --resume (continue a run) or --init-from (start a run from a model), not both")
    if req.resume:
        ckpt_meta = torch.load(req.resume, map_location="cpu", weights_only=False)["meta"]
    init = load_model_file(req.init_from) if req.init_from else None
    alphabet = Alphabet.from_dict(ckpt_meta["alphabet"]) if ckpt_meta else None
    if init is not None:
        alphabet = Alphabet.from_dict(init.meta["alphabet"])
    normalizer = Normalizer.from_dict(ckpt_meta["normalizer"]) if ckpt_meta else None
    convention = ckpt_meta["convention"] if ckpt_meta else req.convention
    if req.compact_data and (req.pair_lines or req.single_lines_too):
        raise ValueError("a compact data set is already built: give --pair-lines when saving it, not when using it")
    if req.compact_data:
        data: HandwritingData = load_compact_data(req.compact_data)
        if ckpt_meta and (data.alphabet.characters != alphabet.characters or data.convention != convention):
            raise ValueError("the compact data set does not match the checkpoint's alphabet or convention")
    else:
        if init is not None and init.meta.get("convention") == convention and "normalizer" in init.meta:
            normalizer = Normalizer.from_dict(init.meta["normalizer"])  # the model's own units
        data = load_handwriting_data(
            req.data,
            convention,
            alphabet,
            normalizer,
            pair_train_lines=req.pair_lines,
            keep_single_lines=req.single_lines_too,
        )
    if ckpt_meta:
        config = ModelConfig.from_dict(ckpt_meta["config"])
    elif init is not None:
        config = ModelConfig.from_dict(init.meta["config"])
        chars = sum(len(c) for c in data.train.chars)
        config.chars_per_step = chars / max(data.train.points, 1)
    else:
        chars = sum(len(c) for c in data.train.chars)
        config = ModelConfig(
            kind=req.model,
            hidden=req.hidden,
            layers=req.layers,
            mixtures=req.mixtures,
            window=req.window,
            alphabet_size=len(data.alphabet),
            chars_per_step=chars / max(data.train.points, 1),
        )
    settings = TrainSettings(
        batch_size=req.batch_size or 32,
        learning_rate=req.learning_rate or 1e-3,
        seed=req.seed,
        threads=req.threads,
        validate_minutes=req.validate_minutes,
        checkpoint_minutes=req.checkpoint_minutes,
        validate_lines=req.validate_lines,
        oversample_rare=req.oversample_rare or 1,
        pair_context_weight=1.0 if req.pair_context_weight is None else req.pair_context_weight,
        style_augment=req.style_augment or 0.0,
        weight_noise=req.weight_noise or 0.0,
    )
    summary = {
        "train_lines": len(data.train),
        "train_points": data.train.points,
        "validation_lines": len(data.validation),
        "read": data.report.summary(),
        "splits": data.split_counts,
    }
    trainer = Trainer(
        config,
        data.alphabet,
        data.normalizer,
        convention,
        data.train,
        data.validation,
        Path(req.run_dir),
        settings,
        pick_torch_device(req.device),
        summary,
    )
    if init is not None:
        warm_start(trainer.model, init)
        earlier = init.meta.get("training", {})
        trainer.earlier_steps = int(earlier.get("step", 0)) + int(earlier.get("earlier_steps", 0))
    if req.resume:
        trainer.earlier_steps = int(ckpt_meta.get("training", {}).get("earlier_steps", 0))
        trainer.load(req.resume, learning_rate=req.learning_rate)
        if req.batch_size:
            trainer.settings.batch_size = req.batch_size
        if req.oversample_rare:
            trainer.settings.oversample_rare = req.oversample_rare
        if req.pair_context_weight is not None:
            trainer.settings.pair_context_weight = req.pair_context_weight
        if req.style_augment is not None:
            trainer.settings.style_augment = req.style_augment
        if req.weight_noise is not None:
            trainer.settings.weight_noise = req.weight_noise
        trainer.settings.learning_rate = trainer.optimizer.param_groups[0]["lr"]
    return trainer


def run_training(req: TrainRequest) -> dict:
    trainer = build_trainer(req)
    print(f"data: {trainer.data_summary.get('read', '')}", flush=True)
    print(
        f"training {trainer.config.kind} network {trainer.config.layers}x{trainer.config.hidden} "
        f"({trainer.convention} points) on {trainer.device}: {len(trainer.train_set)} lines, "
        f"validating on {len(trainer.validation_index)} of {len(trainer.validation_set)}; run folder {trainer.run_dir}",
        flush=True,
    )
    trainer.run(minutes=req.minutes, steps=req.steps, progress=req.progress)
    last = trainer.state.history[-1] if trainer.state.history else {}
    return {
        "step": trainer.state.step,
        "wall_time_s": trainer.state.wall_time,
        "validation_nll_per_line": last.get("validation_nll_per_line", float(np.nan)),
    }
