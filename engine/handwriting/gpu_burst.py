"""A short training burst on a borrowed GPU machine: prepare here, run there, collect here.

The GPU machine is bare (Python, torch, numpy, tqdm; no platformdirs, onnxruntime or PySide6, no network)
and gets a copy of the repository plus the small folder ``.gpu_burst/`` (git-ignored, carried along):

1. ``python -m engine.handwriting.gpu_burst prepare --data DIR --resume runs/NAME/last-compact.pt``
   writes ``.gpu_burst/data.npz`` (the data set, preprocessed with the checkpoint's convention, alphabet
   and normaliser, fp16) and ``.gpu_burst/checkpoint.pt`` (fp16 weights, bf16 Adam moments, as
   ``last-compact.pt``); it fails unless the folder is under 64 MiB.
2. On the GPU machine, from the repository root, one command. The lead's device tool call is
   ``run(command=COMMAND, carry=[".gpu_burst"], timeout_s=600)`` (it carries ``.gpu_burst`` and brings back
   what is written under ``$OUT``, at most 8 files of 16 MiB, 2 folders deep), with COMMAND exactly::

    PYTHONUNBUFFERED=1 PYTHONPATH=. python3 -m engine.handwriting.gpu_burst run --dir .gpu_burst --out $OUT --minutes 8

   It resumes from the checkpoint (device auto: CUDA), trains at most 8 minutes (less if the process
   would otherwise end past ``--deadline-s`` seconds, 540 by default, so the 600 s limit is never hit),
   checkpoints every 2 minutes and leaves in ``$OUT`` only small files: ``run/last-compact.pt`` (split
   into ``run/last-compact.pt.part0``, ``.part1`` if over 15 MiB, as a 3x400 network's is),
   ``run/best.npz`` (only if validation improved), ``run/history.jsonl``, ``burst.log`` and
   ``burst.json`` (summary: steps, seconds per step, device, validation NLL). Add ``--batch-size 64``
   (or more) to use the GPU better: the time loop costs the same per step at any batch size there.
   Keep ``--validate-lines`` (256) as the source run's: ``best.npz`` is written only when validation beats
   the checkpoint's best, measured on that many lines. Matrix products use TF32 unless ``--no-tf32``.
3. ``python -m engine.handwriting.gpu_burst collect --from FILES_AT --run-dir runs/NAME-gpu`` puts the
   checkpoint (joined again), ``best.npz`` and the history into a run folder; then resume here with
   ``penwright train handwriting --resume runs/NAME-gpu/last-compact.pt --run-dir runs/NAME-gpu ...``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_STARTED = time.monotonic()

DATA_FILE = "data.npz"
CHECKPOINT_FILE = "checkpoint.pt"
CARRY_LIMIT = 64 * 2**20  # what the device tool carries
RETURN_FILE_LIMIT = 16 * 2**20  # what it brings back per file
PART_SIZE = 15 * 2**20
MAX_MINUTES = 8.0
COMPACT = "last-compact.pt"
FORBIDDEN_MODULES = ("platformdirs", "onnxruntime", "PySide6")


def _mib(n: int) -> str:
    return f"{n / 2**20:.2f} MiB"


def _folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


# ----- prepare (here) -------------------------------------------------------------------------------------
def _is_compact(ckpt: dict) -> bool:
    import torch

    return all(v.dtype == torch.float16 for v in ckpt["model"].values() if v.is_floating_point())


def prepare(data: str | None, resume: str, folder: str) -> int:
    import torch

    from engine.handwriting.alphabet import Alphabet
    from engine.handwriting.dataset import load_handwriting_data, save_compact_data
    from engine.handwriting.preprocessing import Normalizer
    from engine.training_support import optimizer_to_bf16, torch_save_atomic

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    ckpt = torch.load(resume, map_location="cpu", weights_only=False)
    meta = ckpt["meta"]
    if not _is_compact(ckpt):  # last.pt: make it what Trainer.save writes as last-compact.pt
        ckpt["model"] = {k: v.half() for k, v in ckpt["model"].items()}
        ckpt["optimizer"] = optimizer_to_bf16(ckpt["optimizer"])
    torch_save_atomic(ckpt, out / CHECKPOINT_FILE)
    convention = meta["convention"]
    hw = load_handwriting_data(
        data, convention, Alphabet.from_dict(meta["alphabet"]), Normalizer.from_dict(meta["normalizer"])
    )
    save_compact_data(hw, out / DATA_FILE)
    trained_on = meta.get("training", {}).get("data", {}).get("train_lines")
    if trained_on is not None and trained_on != len(hw.train):
        print(f"warning: the checkpoint was trained on {trained_on} lines, the data set now has {len(hw.train)}")
    info = {
        "source_checkpoint": str(resume),
        "step": ckpt["trainer"]["step"],
        "config": meta["config"],
        "convention": convention,
        "train_lines": len(hw.train),
        "validation_lines": len(hw.validation),
        "prepared": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    (out / "burst-source.json").write_text(json.dumps(info, indent=1) + "\n")
    sizes = {p.name: p.stat().st_size for p in sorted(out.rglob("*")) if p.is_file()}
    total = sum(sizes.values())
    for name, size in sizes.items():
        print(f"  {name:20s} {_mib(size):>12s}")
    print(
        f"{out}: {_mib(total)} in all (limit {_mib(CARRY_LIMIT)}); step {info['step']}, "
        f"{len(hw.train)} training and {len(hw.validation)} validation lines, {time.monotonic() - start:.0f} s"
    )
    if sizes[CHECKPOINT_FILE] > PART_SIZE:
        print(f"note: the returned checkpoint will come back in parts (over {_mib(PART_SIZE)}); collect joins them")
    if total >= CARRY_LIMIT:
        print(f"error: {out} is {_mib(total)}, over the {_mib(CARRY_LIMIT)} the device tool carries", file=sys.stderr)
        return 1
    return 0


# ----- run (on the GPU machine) -----------------------------------------------------------------------------
class _Tee:
    def __init__(self, *streams):
        self.streams = streams

    def write(self, text: str) -> int:
        for s in self.streams:
            s.write(text)
            s.flush()
        return len(text)

    def flush(self) -> None:
        for s in self.streams:
            s.flush()

    def isatty(self) -> bool:
        return False


@contextmanager
def tee_output(log_path: Path) -> Iterator[None]:
    """Everything printed also goes to ``log_path`` (appended), which comes back with the burst's files."""
    previous = sys.stdout, sys.stderr
    with open(log_path, "a", buffering=1) as log:
        sys.stdout, sys.stderr = _Tee(previous[0], log), _Tee(previous[1], log)
        try:
            yield
        finally:
            sys.stdout, sys.stderr = previous


def _split_large(path: Path, part_size: int = PART_SIZE) -> list[Path]:
    """Files over the device tool's return limit go back as ``NAME.part0``, ``NAME.part1``, ..."""
    for old in path.parent.glob(path.name + ".part*"):
        old.unlink()
    if path.stat().st_size <= part_size:
        return [path]
    parts = []
    with open(path, "rb") as handle:
        while chunk := handle.read(part_size):
            part = path.with_name(f"{path.name}.part{len(parts)}")
            part.write_bytes(chunk)
            parts.append(part)
    path.unlink()
    return parts


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    run_dir = out / "run"
    cache = tempfile.mkdtemp(prefix="penwright-cache-")
    os.environ["PENWRIGHT_CACHE_DIR"] = cache
    os.environ.setdefault("PENWRIGHT_DATA_DIR", cache)
    try:
        with tee_output(out / "burst.log"):
            return _run(args, out, run_dir)
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def _run(args: argparse.Namespace, out: Path, run_dir: Path) -> int:
    import numpy as np
    import torch

    from engine.handwriting.train_run import TrainRequest, build_trainer

    folder = Path(args.dir)
    device = args.device
    if device == "auto" and not torch.cuda.is_available():
        print("warning: no CUDA device; training on the CPU")
    if not args.no_tf32:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    minutes = min(args.minutes, MAX_MINUTES)
    req = TrainRequest(
        compact_data=str(folder / DATA_FILE),
        resume=str(folder / CHECKPOINT_FILE),
        run_dir=str(run_dir),
        device=device,
        batch_size=args.batch_size,
        validate_minutes=args.validate_minutes,
        checkpoint_minutes=args.checkpoint_minutes,
        validate_lines=args.validate_lines,
        threads=args.threads,
        progress=False,
    )
    trainer = build_trainer(req)
    if args.lr is not None:
        for group in trainer.optimizer.param_groups:
            group["lr"] = args.lr
        trainer.settings.learning_rate = args.lr
    start_step = trainer.state.step
    device_name = torch.cuda.get_device_name(trainer.device) if trainer.device.type == "cuda" else "cpu"
    print(
        f"burst: {trainer.config.kind} {trainer.config.layers}x{trainer.config.hidden} from step {start_step} on "
        f"{device_name} (torch {torch.__version__}), batch {trainer.settings.batch_size}, "
        f"lr {trainer.optimizer.param_groups[0]['lr']:g}; {len(trainer.train_set)} lines; "
        f"ready {time.monotonic() - _STARTED:.0f} s after start",
        flush=True,
    )

    original_save = trainer.save

    def save(compact_too: bool = True) -> None:  # only small files stay in $OUT
        original_save(compact_too=True)
        (run_dir / "last.pt").unlink(missing_ok=True)
        _split_large(run_dir / COMPACT)

    trainer.save = save

    original_step = trainer.train_step
    timing = {"last_print": time.monotonic(), "steps": 0, "points": 0, "losses": [], "step_s": []}

    def train_step(index):
        t = time.monotonic()
        loss = original_step(index)
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()
        timing["step_s"].append(time.monotonic() - t)
        timing["steps"] += 1
        timing["points"] += sum(len(trainer.train_set.strokes[i]) for i in index)
        timing["losses"].append(loss)
        if time.monotonic() - timing["last_print"] >= args.print_seconds:
            recent = timing["step_s"][-50:]
            print(
                f"step {trainer.state.step + 1}: nll/line {np.mean(timing['losses'][-50:]):.1f}, "
                f"{np.median(recent):.3f} s/step, {time.monotonic() - _STARTED:.0f} s since start",
                flush=True,
            )
            timing["last_print"] = time.monotonic()
        return loss

    trainer.train_step = train_step
    # Never run past the deadline: leave time for the last validation and checkpoint.
    budget = (args.deadline_s - (time.monotonic() - _STARTED) - args.reserve_s) / 60
    minutes = max(0.0, min(minutes, budget))
    print(f"training for {minutes:.2f} minutes", flush=True)
    train_start = time.monotonic()
    trainer.run(minutes=minutes, progress=False)
    train_s = time.monotonic() - train_start
    last = trainer.state.history[-1] if trainer.state.history else {}
    forbidden = sorted(m for m, v in sys.modules.items() if v is not None and m.split(".")[0] in FORBIDDEN_MODULES)
    files = {str(p.relative_to(out)): p.stat().st_size for p in sorted(out.rglob("*")) if p.is_file()}
    summary = {
        "device": device_name,
        "torch": torch.__version__,
        "start_step": start_step,
        "end_step": trainer.state.step,
        "steps": timing["steps"],
        "batch_size": trainer.settings.batch_size,
        "learning_rate": trainer.optimizer.param_groups[0]["lr"],
        "train_seconds": round(train_s, 1),
        "median_step_s": round(float(np.median(timing["step_s"])), 4) if timing["step_s"] else None,
        "points_per_s": round(timing["points"] / train_s, 1) if train_s > 0 else None,
        "validation_nll_per_line": last.get("validation_nll_per_line"),
        "best_validation_nll_per_line": trainer.state.best_validation,
        "total_seconds": round(time.monotonic() - _STARTED, 1),
        "forbidden_modules_loaded": forbidden,
        "files": files,
    }
    (out / "burst.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary), flush=True)
    too_big = [name for name, size in files.items() if size > RETURN_FILE_LIMIT]
    if too_big or len(files) > 8:
        print(f"warning: files the device tool may not bring back: {too_big or files}", file=sys.stderr)
    return 0


# ----- collect (here) ---------------------------------------------------------------------------------------
def _find(root: Path, name: str) -> Path | None:
    hits = sorted(root.rglob(name))
    return hits[0] if hits else None


def collect(source: str, run_dir: str, force: bool = False) -> int:
    import io

    import torch

    from engine.atomic import atomic_write_bytes

    root, dest = Path(source), Path(run_dir)
    whole = _find(root, COMPACT)
    parts = sorted(root.rglob(COMPACT + ".part*"), key=lambda p: int(p.name.rsplit(".part", 1)[1]))
    if whole is None and not parts:
        print(f"error: no {COMPACT} (or its parts) under {root}", file=sys.stderr)
        return 1
    data = whole.read_bytes() if whole is not None else b"".join(p.read_bytes() for p in parts)
    ckpt = torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)
    missing = {"meta", "model", "optimizer", "trainer"} - set(ckpt)
    if missing:
        print(f"error: the returned checkpoint lacks {sorted(missing)}", file=sys.stderr)
        return 1
    existing = [n for n in ("last.pt", COMPACT) if (dest / n).exists()]
    if existing and not force:
        print(
            f"error: {dest} already holds {', '.join(existing)}; collect into a new folder or pass --force",
            file=sys.stderr,
        )
        return 1
    dest.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(dest / COMPACT, data)
    copied = [COMPACT]
    best = _find(root, "best.npz")
    if best is not None:
        shutil.copyfile(best, dest / "best.npz")
        copied.append("best.npz")
    history = _find(root, "history.jsonl")
    if history is not None:
        with open(dest / "history.jsonl", "a") as handle:
            handle.write(history.read_text())
        copied.append("history.jsonl (appended)")
    for extra in ("burst.log", "burst.json"):
        found = _find(root, extra)
        if found is not None:
            shutil.copyfile(found, dest / f"gpu-{extra}")
            copied.append(f"gpu-{extra}")
    state = ckpt["trainer"]
    print(
        f"collected step {state['step']} (best validation {state['best_validation']:.1f} nats/line) into {dest}: "
        f"{', '.join(copied)}; {_mib(len(data))}"
    )
    print(f"resume with: penwright train handwriting --resume {dest / COMPACT} --run-dir {dest} --data DIR")
    return 0


# ----- command line -----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.handwriting.gpu_burst", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="write .gpu_burst/ (data and checkpoint) for a GPU machine")
    p.add_argument("--data", help="IAM-OnDB folder (default $PENWRIGHT_IAM_ONDB)")
    p.add_argument("--resume", required=True, help="checkpoint to continue (last-compact.pt or last.pt)")
    p.add_argument("--dir", default=".gpu_burst")
    r = sub.add_parser("run", help="train on the GPU machine from --dir, leave small files in --out")
    r.add_argument("--dir", default=".gpu_burst")
    r.add_argument("--out", required=True)
    r.add_argument("--minutes", type=float, default=MAX_MINUTES, help=f"at most {MAX_MINUTES:g}")
    r.add_argument("--deadline-s", type=float, default=540.0, help="end training so the process ends by then")
    r.add_argument("--reserve-s", type=float, default=30.0, help="kept for the last validation and checkpoint")
    r.add_argument("--batch-size", type=int, default=32)
    r.add_argument("--lr", type=float, help="learning rate (default: the checkpoint's)")
    r.add_argument("--device", default="auto")
    r.add_argument("--threads", type=int, default=0)
    r.add_argument("--validate-minutes", type=float, default=2.0)
    r.add_argument("--checkpoint-minutes", type=float, default=2.0)
    r.add_argument("--validate-lines", type=int, default=256)
    r.add_argument("--print-seconds", type=float, default=30.0)
    r.add_argument("--no-tf32", action="store_true", help="full fp32 matrix products on the GPU")
    c = sub.add_parser("collect", help="put a returned burst into a run folder")
    c.add_argument("--from", dest="source", required=True, help="the folder the device tool returned files to")
    c.add_argument("--run-dir", required=True)
    c.add_argument("--force", action="store_true", help="overwrite a run folder's checkpoints")
    args = parser.parse_args(argv)
    if args.command == "prepare":
        return prepare(args.data, args.resume, args.dir)
    if args.command == "run":
        return run(args)
    return collect(args.source, args.run_dir, args.force)


if __name__ == "__main__":
    sys.exit(main())
