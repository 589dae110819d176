"""Ship a trained text model: copy a run's best model into resources/models, export its step to ONNX and
write its card.

    python -m engine.text.release --run-dir runs/text-shakespeare --name shakespeare \
        --corpus ../shared/data/text/tinyshakespeare.txt --command "penwright train text ..."

The card records the network, corpus and split, steps, wall time, hardware, the held-out score (the
corpus's last 10%, measured here as `penwright eval text` does, static and with dynamic evaluation), the
learning curve, a sample, the command that reproduces the model, and where the weights' terms come from.
A run started from an earlier model (``penwright train text --init-from``) names that stage with
``--earlier "stage 1: ..."``, so the card tells the whole training.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
from pathlib import Path

from engine.atomic import atomic_write_text
from engine.handwriting.release import curve_points
from engine.text.evaluation import evaluate_text
from engine.text.model_file import load_text_model

RESOURCES = Path(__file__).resolve().parents[2] / "resources" / "models"

TERMS = {
    "shakespeare": (
        "Trained on tiny-shakespeare (about 1 MB of Shakespeare's plays, public domain). The weights are "
        "the project's own, under the project's licence."
    ),
    "iam": (
        "Trained on the transcriptions of the IAM On-Line Handwriting Database's training lines (IAM-OnDB-t1 "
        "trainset + testset_t). IAM-OnDB is free for **non-commercial research** only, and these weights "
        'inherit that restriction. Cite: M. Liwicki and H. Bunke, "IAM-OnDB - an On-Line English Sentence '
        'Database Acquired from Handwritten Text on a Whiteboard", ICDAR 2005.'
    ),
}


def _bpc(value: float | None) -> str:
    return f"{value:.3f}" if value is not None else "-"  # a run on the first 90% has nothing to validate on


def learning_curve_table(history: list[dict], rows: int = 12) -> str:
    if not history:
        return "(no validation points recorded)\n"
    lines = ["| step | epoch | wall time (min) | train bpc | validation bpc |", "|---:|---:|---:|---:|---:|"]
    for h in curve_points(history, rows):
        lines.append(
            f"| {h['step']} | {h['epoch']} | {h['wall_time_s'] / 60:.0f} | {h.get('train_bpc', float('nan')):.3f} "
            f"| {_bpc(h.get('validation_bpc'))} |"
        )
    return "\n".join(lines) + "\n"


def model_card(
    name: str,
    meta: dict,
    score_line: str,
    history: list[dict],
    sample: str,
    command: str,
    hw: str,
    dynamic_line: str | None = None,
    earlier: str | None = None,
) -> str:
    cfg, training = meta["config"], meta.get("training", {})
    data = training.get("data", {})
    network = f"{cfg['layers']} LSTM layers of {cfg['hidden']} cells with skip connections (Graves 2013, section 3)"
    if cfg.get("dropout"):
        network += f", dropout {cfg['dropout']} on each layer's output in training"
    chars = meta["vocabulary"]["chars"] if isinstance(meta["vocabulary"], dict) else meta["vocabulary"]
    schedule = (
        f"{training.get('step', '?')} steps of {training.get('batch_size', '?')} streams x "
        f"{training.get('seq_len', '?')} characters (truncated BPTT; {training.get('epoch', '?')} epochs), "
        f"Adam lr {training.get('learning_rate', '?')}, gradient norm clipped"
    )
    if earlier:
        schedule = f"{earlier}; then, from its weights: {schedule}"
    dynamic_row = (
        "| held-out last 10%, dynamic evaluation (`penwright eval text --dynamic`: Graves 2013, section 3.2; adapts "
        f"to the text as it reads it, so not comparable with static scores) | `{dynamic_line}` |\n"
        if dynamic_line
        else ""
    )
    fence = "`" * 3
    corpus = Path(str(data.get("source", "?"))).name
    if data.get("validation_chars") == 0:  # --train-on-validation
        split_text = (
            f"{data.get('train_chars', '?')} characters for training (the first 90%, nanoGPT's split: no validation "
            "slice), the last 10% held out"
        )
    else:
        split_text = (
            f"{data.get('train_chars', '?')} characters for training, the next 5% validate, the last 10% held out"
        )
    return f"""# Text model: {name}

A character-level LSTM language model: the paper's first experiment, and the half of Dream that invents
the text the handwriting network then writes.

| | |
|---|---|
| network | {network} |
| vocabulary | {len(chars)} characters |
| data | {corpus}: {split_text} |
| training | {schedule} |
| wall time | {training.get("wall_time_s", 0) / 60:.0f} minutes |
| hardware | {hw} |
| weights | fp16, numpy `.npz` with JSON metadata; the step exported to ONNX beside it |
| held-out last 10% (`penwright eval text`) | `{score_line}` |
{dynamic_row}
## Sample

Temperature 0.8, seed 1, 400 characters (`penwright dream --model resources/models/text-{name}.npz --chars 400
--temperature 0.8 --seed 1`):

{fence}
{sample}
{fence}

## Reproduce

{fence}
{command}
{fence}

## Learning curve

Bits per character on the first validation characters (none for a run on the first 90%) against wall time:

{learning_curve_table(history)}
## Terms of these weights

{TERMS.get(name, "")}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--name", required=True, help="shakespeare, iam, ...: the file is text-NAME.npz")
    parser.add_argument("--corpus", required=True, help="the corpus it was trained on (for the held-out score)")
    parser.add_argument("--command", required=True, help="the training command(s) that reproduce the model")
    parser.add_argument("--earlier", help="the training stage(s) the run started from, for the card")
    parser.add_argument("--hardware", default=f"{platform.processor() or platform.machine()} CPU, 1 thread")
    args = parser.parse_args(argv)
    from engine.text.dream import load_text_stepper
    from engine.text.onnx_step import export_text_onnx
    from engine.text.sampling import sample_text

    run = Path(args.run_dir)
    source = run / "best.npz"
    model = load_text_model(source)
    score = evaluate_text(source, args.corpus)
    dynamic = evaluate_text(source, args.corpus, dynamic=True)
    target = RESOURCES / f"text-{args.name}.npz"
    shutil.copyfile(source, target)
    export_text_onnx(target)
    _, stepper = load_text_stepper(target)
    sample = sample_text(stepper, model.vocab, 400, temperature=0.8, seed=1)
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines() if line.strip()]
    card = model_card(
        args.name,
        model.meta,
        score.summary_line(),
        history,
        sample,
        args.command,
        args.hardware,
        dynamic.summary_line(),
        args.earlier,
    )
    atomic_write_text(RESOURCES / f"text-{args.name}.md", card)
    print(
        f"shipped {target} ({target.stat().st_size / 1e6:.1f} MB): {score.summary_line()}; "
        f"dynamic: {dynamic.summary_line()}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
