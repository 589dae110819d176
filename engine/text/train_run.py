"""Set up and run a text training run (what `penwright train text` does)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class TextTrainRequest:
    corpus: str
    run_dir: str = "runs/text"
    layers: int = 2
    hidden: int = 256
    dropout: float = 0.0
    weight_drop: float = 0.0
    seq_len: int | None = None  # default 100; on resume, always the checkpoint's
    batch_size: int | None = None  # default 32; on resume, always the checkpoint's
    learning_rate: float | None = None  # default 2e-3; on resume, the checkpoint's unless given
    resume: str | None = None
    init_from: str | None = None  # a text model file (.npz) whose weights and vocabulary start a new run
    minutes: float | None = None
    steps: int | None = None
    seed: int = 0
    threads: int = 0
    device: str = "cpu"  # "auto": CUDA when torch sees it
    validate_chars: int = 20000
    train_on_validation: bool = False  # the first 90% (nanoGPT's split); on resume, always the checkpoint's
    validate_minutes: float = 5.0
    checkpoint_minutes: float = 5.0
    progress: bool = True


def build_text_trainer(req: TextTrainRequest):
    import torch

    from engine.text.data import Vocabulary, load_corpus
    from engine.text.model import TextConfig
    from engine.text.model_file import load_text_model
    from engine.text.training import TextTrainer, TextTrainSettings

    if req.resume and req.init_from:
        raise ValueError("give either --resume (continue a run) or --init-from (start a run from a model), not both")
    ckpt_meta, ckpt_settings = None, {}
    if req.resume:
        ckpt = torch.load(req.resume, map_location="cpu", weights_only=False)
        ckpt_meta, ckpt_settings = ckpt["meta"], ckpt.get("settings", {})
    init = load_text_model(req.init_from) if req.init_from else None
    vocab = Vocabulary.from_dict(ckpt_meta["vocabulary"]) if ckpt_meta else (init.vocab if init else None)
    corpus = load_corpus(req.corpus, vocab)
    # A run trains on one split from start to end: a resumed run keeps its own.
    on_validation = bool(ckpt_settings.get("train_on_validation", False)) if req.resume else req.train_on_validation
    if on_validation:
        corpus = corpus.with_validation_trained()
    if ckpt_meta:
        config = TextConfig.from_dict(ckpt_meta["config"])
    elif init is not None:
        # the model's sizes; dropout is a training choice, taken from this request
        config = TextConfig.from_dict({**init.meta["config"], "dropout": req.dropout, "weight_drop": req.weight_drop})
    else:
        config = TextConfig(
            vocab_size=len(corpus.vocab),
            hidden=req.hidden,
            layers=req.layers,
            dropout=req.dropout,
            weight_drop=req.weight_drop,
        )
    settings = TextTrainSettings(
        batch_size=req.batch_size or 32,
        seq_len=req.seq_len or 100,
        learning_rate=req.learning_rate or 2e-3,
        seed=req.seed,
        validate_chars=0 if on_validation else req.validate_chars,
        train_on_validation=on_validation,
        validate_minutes=req.validate_minutes,
        checkpoint_minutes=req.checkpoint_minutes,
        threads=req.threads,
    )
    from engine.training_support import pick_torch_device

    trainer = TextTrainer(config, corpus, Path(req.run_dir), settings, device=pick_torch_device(req.device))
    if init is not None:
        trainer.model.load_state_dict({k: torch.as_tensor(v, dtype=torch.float32) for k, v in init.weights.items()})
    if req.resume:
        trainer.load(req.resume, learning_rate=req.learning_rate)
    return trainer


def run_text_training(req: TextTrainRequest) -> dict:
    trainer = build_text_trainer(req)
    c, s, d = trainer.config, trainer.settings, trainer.corpus.summary()
    params = sum(p.numel() for p in trainer.model.parameters())
    print(
        f"training text network {c.layers}x{c.hidden} ({params / 1e6:.2f}M parameters, {c.vocab_size} characters) on "
        f"{d['train_chars']} characters of {d['source']}: {s.batch_size} streams x {s.seq_len}, "
        f"{trainer.segments} steps per epoch, on {trainer.device}; run folder {trainer.run_dir}",
        flush=True,
    )
    trainer.run(minutes=req.minutes, steps=req.steps, progress=req.progress)
    last = trainer.state.history[-1] if trainer.state.history else {}
    return {
        "step": trainer.state.step,
        "epoch": trainer.state.epoch,
        "wall_time_s": round(trainer.state.wall_time, 1),
        "validation_bpc": last.get("validation_bpc"),
        "best_validation_bpc": trainer.state.best_validation_bpc,
        "model": str(trainer.run_dir / "best.npz"),
    }
