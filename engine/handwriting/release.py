"""Ship a trained handwriting model: copy a run's best model into resources/models and write its card.

    python -m engine.handwriting.release --run-dir runs/synthesis-skip2 --kind synthesis --data DIR

The card records data and split, steps, wall time, hardware, validation NLL (full testset_v, measured
here with `penwright eval handwriting`), the learning curve, the command that reproduces the model and
the IAM-OnDB licence terms that the weights inherit.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
from pathlib import Path

from engine.atomic import atomic_write_text
from engine.handwriting.alphabet import Alphabet
from engine.handwriting.checkpoint import load_model_file
from engine.handwriting.evaluation import evaluate

RESOURCES = Path(__file__).resolve().parents[2] / "resources" / "models"

LICENCE_NOTE = """\
## Licence of these weights

Trained on the IAM On-Line Handwriting Database (IAM-OnDB), which is free for **non-commercial
research** only; users must register with its owners (FKI, University of Bern). These weights inherit
that restriction: do not use them commercially. Cite: M. Liwicki and H. Bunke, "IAM-OnDB - an On-Line
English Sentence Database Acquired from Handwritten Text on a Whiteboard", ICDAR 2005.
"""


def curve_points(history: list[dict], rows: int = 12) -> list[dict]:
    """At most ``rows`` + 1 evenly spaced validation records of a run, always with the last one."""
    stride = max(1, -(-len(history) // rows))
    picked = history[::stride]
    if picked and picked[-1] is not history[-1]:
        picked.append(history[-1])
    return picked


def learning_curve_table(history: list[dict], rows: int = 12) -> str:
    if not history:
        return "(no validation points recorded)\n"
    picked = curve_points(history, rows)
    lines = [
        "| step | epoch | wall time (min) | train NLL/line | validation NLL/line (256 lines) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for h in picked:
        train = h.get("train_nll_per_line")
        train_text = "-" if train is None else f"{train:.1f}"
        minutes = h["wall_time_s"] / 60
        lines.append(
            f"| {h['step']} | {h['epoch']} | {minutes:.0f} | {train_text} | {h['validation_nll_per_line']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def model_card(kind: str, meta: dict, eval_line: str, history: list[dict], command: str, hardware: str) -> str:
    cfg, training = meta["config"], meta.get("training", {})
    alphabet = Alphabet.from_dict(meta["alphabet"])
    data = training.get("data", {})
    network = (
        f"{cfg['layers']} LSTM layers of {cfg['hidden']} cells with skip connections, "
        f"{cfg['mixtures']}-component bivariate Gaussian mixture + end-of-stroke output"
    )
    if kind == "synthesis":
        network += f", soft window of {cfg['window']} Gaussians over the one-hot text"
    if meta["convention"] == "paper":
        convention = "one step per recorded point: NLL comparable with the paper"
    else:
        convention = "every second point kept within each stroke: NLL not comparable with the paper"
    mean = [round(v, 3) for v in meta["normalizer"]["mean"]]
    std = [round(v, 3) for v in meta["normalizer"]["std"]]
    train_data = (
        f"IAM-OnDB, IAM-OnDB-t1 splits: trainset + testset_t for training ({data.get('train_lines', '?')} lines, "
        f"{data.get('train_points', '?')} steps), testset_v for validation; blacklist applied"
    )
    schedule = (
        f"{training.get('step', '?')} steps of batch {training.get('batch_size', '?')} "
        f"({training.get('epoch', '?')} epochs), Adam lr {training.get('learning_rate', '?')}, "
        "Graves' derivative clipping + gradient norm 10"
    )
    section = "5" if kind == "synthesis" else "4"
    if kind == "synthesis":
        samples = (
            "The sample sheet (five sentences, biases 0, 0.5, 1 and 2, two seeds each; "
            "`python -m engine.handwriting.sample_sheet -o docs/samples.png`):\n\n"
            "![samples](../../docs/samples.png)"
        )
    else:
        samples = (
            "Unconditional samples (bias 0.5, seeds 1-3; "
            "`python -m engine.handwriting.sample_sheet --prediction -o docs/prediction-samples.png --seeds 1 2 3`): "
            "word-like strokes with some real short words, as in the paper's figure 11.\n\n"
            "![samples](../../docs/prediction-samples.png)"
        )
    return f"""# Handwriting {kind} network

Graves (2013), *Generating Sequences with Recurrent Neural Networks*, section {section}.

| | |
|---|---|
| network | {network} |
| point convention | `{meta["convention"]}` ({convention}) |
| normalisation | offsets mean {mean}, std {std} (sensor units) |
| data | {train_data} |
| read report | {data.get("read", "?")} |
| training | {schedule} |
| wall time | {training.get("wall_time_s", 0) / 60:.0f} minutes |
| hardware | {hardware} |
| weights | fp16, numpy `.npz` with JSON metadata (readable without torch) |
| validation (full testset_v) | `{eval_line}` |

Alphabet ({len(alphabet)} characters): `{alphabet.characters}`

Rare characters (on fewer than 20 training lines; writing them gives a warning): `{alphabet.rare}`.
For example capital X occurs on 2 lines, Z on 7 and Q on 15.

## Samples

{samples}

## Reproduce

```
{command}
```

## Learning curve

Validation NLL per line (nats, on the first 256 testset_v lines, in this model's normalised units)
against wall time:

{learning_curve_table(history)}
{LICENCE_NOTE}"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--kind", choices=["synthesis", "prediction"], required=True)
    parser.add_argument("--data", help="IAM-OnDB folder for the validation NLL (default $PENWRIGHT_IAM_ONDB)")
    parser.add_argument("--command", required=True, help="the training command(s) that reproduce the model")
    parser.add_argument("--hardware", default=f"{platform.processor() or platform.machine()} CPU, 1 thread")
    parser.add_argument("--limit", type=int, help="evaluate on the first N validation lines only")
    args = parser.parse_args(argv)
    run = Path(args.run_dir)
    source = run / "best.npz"
    model = load_model_file(source)
    target = RESOURCES / f"handwriting-{args.kind}.npz"
    result = evaluate(source, args.data, limit=args.limit)
    shutil.copyfile(source, target)
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines() if line.strip()]
    card = model_card(args.kind, model.meta, result.summary_line(), history, args.command, args.hardware)
    atomic_write_text(RESOURCES / f"handwriting-{args.kind}.md", card)
    print(f"shipped {target} ({target.stat().st_size / 1e6:.1f} MB): {result.summary_line()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
