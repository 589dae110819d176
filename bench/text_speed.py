"""Text generation speed: characters per second with PyTorch and with ONNX Runtime, one thread each.

    python bench/text_speed.py [--layers 2] [--hidden 256] [--vocab 65] [--chars 1000]

A randomly initialised network of the given size (speed does not depend on the weights) samples
``--chars`` characters with each backend through engine.text.sampling. The last line reads
``ratio=X``: ONNX Runtime's speed over PyTorch's. Under 30 s (most of it the export).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from engine.text.data import Vocabulary  # noqa: E402
from engine.text.model import TextConfig, TextNet, TorchTextStepper  # noqa: E402
from engine.text.model_file import save_text_model  # noqa: E402
from engine.text.onnx_step import TextOnnxStepper, export_text_onnx  # noqa: E402
from engine.text.sampling import sample_text  # noqa: E402


def chars_per_second(stepper, vocab: Vocabulary, chars: int) -> float:
    sample_text(stepper, vocab, 20, seed=0)  # warm up
    start = time.perf_counter()
    sample_text(stepper, vocab, chars, seed=1)
    return chars / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--vocab", type=int, default=65)
    parser.add_argument("--chars", type=int, default=1000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    vocab = Vocabulary("".join(chr(32 + i) for i in range(args.vocab - 1)) + "\n")
    config = TextConfig(len(vocab), args.hidden, args.layers)
    net = TextNet(config).eval()
    with tempfile.TemporaryDirectory() as folder:
        model_path = Path(folder) / "bench.npz"
        weights = {k: v.numpy() for k, v in net.state_dict().items()}
        save_text_model(model_path, {"config": config.to_dict(), "vocabulary": vocab.to_dict()}, weights)
        export_text_onnx(model_path)
        onnx = TextOnnxStepper(model_path.with_suffix(".onnx"), threads=1)
        torch_speed = chars_per_second(TorchTextStepper(net), vocab, args.chars)
        onnx_speed = chars_per_second(onnx, vocab, args.chars)
    print(f"network {args.layers}x{args.hidden}, vocabulary {len(vocab)}, {args.chars} characters, one thread")
    print(f"torch_chars_per_s={torch_speed:.0f} onnx_chars_per_s={onnx_speed:.0f}")
    print(f"ratio={onnx_speed / torch_speed:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
