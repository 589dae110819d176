"""Dump the IAM-OnDB training-split transcriptions (what the handwriting trainer trains on) to a text
file, one line of handwriting per line, as a corpus for `penwright train text`:

    python -m engine.text.iam_text corpora/iam-ondb-train.txt [--data IAM_ONDB_FOLDER]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.atomic import atomic_write_text


def iam_training_texts(folder: str | Path | None) -> list[str]:
    """Transcriptions of the lines the handwriting trainer trains on (every split but testset_v), without
    the lines it leaves out."""
    import hashlib

    from engine.handwriting.alphabet import Alphabet
    from engine.handwriting.dataset import VALIDATION_SPLIT, load_lines, resolve_data_folder
    from engine.handwriting.iam_ondb import read_splits, split_of

    folder = resolve_data_folder(folder)
    lines, _ = load_lines(folder)
    splits = read_splits(folder)
    texts = []
    for line in sorted(lines, key=lambda item: item.line_id):
        if splits:
            name = split_of(line.form_id, splits)
        else:
            name = VALIDATION_SPLIT if hashlib.md5(line.form_id.encode()).digest()[0] < 26 else "trainset"
        if name is not None and name != VALIDATION_SPLIT:
            texts.append(line.text)
    # as the handwriting trainer: lines with characters outside the alphabet (e.g. '#' for crossed-out
    # words) are left out
    alphabet = Alphabet.from_texts(texts)
    return [text for text in texts if not alphabet.unknown(text)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the IAM-OnDB training transcriptions to a text file.")
    parser.add_argument("output")
    parser.add_argument("--data", help="IAM-OnDB folder (default: the handwriting default)")
    args = parser.parse_args(argv)
    texts = iam_training_texts(args.data)
    atomic_write_text(args.output, "\n".join(texts) + "\n")
    print(f"wrote {args.output}: {len(texts)} lines, {sum(len(t) + 1 for t in texts)} characters")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
