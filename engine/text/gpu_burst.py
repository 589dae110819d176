"""A text-network training burst on a borrowed GPU machine (see engine.handwriting.gpu_burst for the tool).

The GPU machine has torch, numpy and tqdm but none of the app's other packages; the corpus travels in the
carried, git-ignored folder ``.gpu_burst/``. From the repository root there::

    PYTHONUNBUFFERED=1 PYTHONPATH=. python3 -m engine.text.gpu_burst --corpus .gpu_burst/tinyshakespeare.txt \
        --out $OUT/text --layers 3 --hidden 512 --dropout 0.3 --minutes 8

trains a new network on the GPU (cuDNN LSTMs; batch and segment length as given), validating on the whole
validation slice every ``--validate-minutes``; after ``--patience`` validations without a new best, the learning
rate drops by ``--decay`` (at most ``--max-decays`` times: the drops settle Adam's noise once the curve flattens).
It stops by ``--deadline-s`` seconds after the process started and leaves in ``--out`` only small files: ``best.npz``
(fp16, the shipped format), ``history.jsonl``, ``burst.log`` and ``burst.json`` (the summary, with the best
model's score on the held-out last 10%, as `penwright eval text` measures it). Ship it here with
``python -m engine.text.release --run-dir OUT ...`` after checking the score with `penwright eval text`.

Measured on an H200 (2026-11-28, docs/training.md "A GPU burst"): networks of 3x512 and 3x640 overfit tiny-shakespeare
within 20 epochs and scored 1.66-1.70 nats per held-out character, worse than the CPU-trained 3x384 (1.6264), all
trained on the first 85%; the shipped network's 1.4234 comes from training on the first 90% (``--train-on-validation``
in `penwright train text`; the burst has no such switch yet).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

_STARTED = time.monotonic()


def _train(args: argparse.Namespace, out: Path) -> dict:
    import torch

    from engine.text.data import held_out_text
    from engine.text.evaluation import score_ids
    from engine.text.model import build_text_network
    from engine.text.model_file import load_text_model
    from engine.text.train_run import TextTrainRequest, build_text_trainer

    torch.backends.cuda.matmul.allow_tf32 = not args.no_tf32
    torch.backends.cudnn.allow_tf32 = not args.no_tf32
    req = TextTrainRequest(
        corpus=args.corpus,
        run_dir=str(out),
        layers=args.layers,
        hidden=args.hidden,
        dropout=args.dropout,
        weight_drop=args.weight_drop,
        seq_len=args.seq_len,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        seed=args.seed,
        device=args.device,
        validate_chars=10**9,  # the whole validation slice: cheap on a GPU
        validate_minutes=10**6,  # validated at the end of each chunk below
        checkpoint_minutes=10**6,  # only the best model comes back
        progress=False,
    )
    trainer = build_text_trainer(req)
    c, s = trainer.config, trainer.settings
    params = sum(p.numel() for p in trainer.model.parameters())
    print(
        f"text burst: {c.layers}x{c.hidden} dropout {c.dropout}, weight drop {c.weight_drop} "
        f"({params / 1e6:.2f}M parameters) on {trainer.device}, "
        f"{s.batch_size} streams x {s.seq_len}, lr {s.learning_rate:g}, {trainer.segments} steps per epoch; "
        f"ready {time.monotonic() - _STARTED:.0f} s after start",
        flush=True,
    )
    trainer.save = lambda *a, **k: None  # only the best model (written on each validation) comes back
    budget = max(0.0, min(args.minutes, (args.deadline_s - args.reserve_s - (time.monotonic() - _STARTED)) / 60))
    train_start = time.monotonic()
    lr, stale, lr_changes = s.learning_rate, 0, []
    # Validate every --validate-minutes; after --patience validations without a new best, lower the rate.
    while (left := budget - (time.monotonic() - train_start) / 60) > 1 / 60:
        best_before = trainer.state.best_validation_bpc
        trainer.run(minutes=min(args.validate_minutes, left), progress=False)  # ends with a validation
        stale = 0 if trainer.state.best_validation_bpc < best_before else stale + 1
        if stale >= args.patience and len(lr_changes) < args.max_decays:
            lr *= args.decay
            for group in trainer.optimizer.param_groups:
                group["lr"] = lr
            trainer.settings.learning_rate = lr
            lr_changes.append({"step": trainer.state.step, "lr": lr})
            print(f"no better validation for {stale} checks: lr {lr:g} from step {trainer.state.step}", flush=True)
            stale = 0
    train_s = time.monotonic() - train_start
    for name in ("last.pt", "last-compact.pt"):  # too big to bring back, and not needed to ship
        (out / name).unlink(missing_ok=True)
    best = load_text_model(out / "best.npz")
    net = build_text_network(best.weights, best.config).to(trainer.device)
    held_out = score_ids(net, best.vocab.encode(held_out_text(args.corpus)))
    return {
        "device": torch.cuda.get_device_name(trainer.device) if trainer.device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "config": c.to_dict(),
        "parameters": params,
        "batch_size": s.batch_size,
        "seq_len": s.seq_len,
        "lr": args.lr,
        "lr_changes": lr_changes,
        "steps": trainer.state.step,
        "epochs": trainer.state.epoch,
        "train_seconds": round(train_s, 1),
        "best_validation_bpc": trainer.state.best_validation_bpc,
        "held_out": held_out.summary_line(),
        "total_seconds": round(time.monotonic() - _STARTED, 1),
    }


def main(argv: list[str] | None = None) -> int:
    from engine.handwriting.gpu_burst import tee_output

    parser = argparse.ArgumentParser(prog="python -m engine.text.gpu_burst", description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--dropout", type=float, default=0.3)
    parser.add_argument("--weight-drop", type=float, default=0.0, help="DropConnect on the recurrent weights")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--patience", type=int, default=2, help="validations without a new best before a lower rate")
    parser.add_argument("--decay", type=float, default=0.3, help="each lower rate, as a factor of the one before")
    parser.add_argument("--max-decays", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=8.0)
    parser.add_argument("--deadline-s", type=float, default=540.0, help="end training so the process ends by then")
    parser.add_argument("--reserve-s", type=float, default=25.0, help="kept for the last validation and scoring")
    parser.add_argument("--validate-minutes", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--no-tf32", action="store_true", help="full fp32 matrix products on the GPU")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tee_output(out / "burst.log"):
        summary = _train(args, out)
        (out / "burst.json").write_text(json.dumps(summary, indent=1) + "\n")
        print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
