"""Export the project's ESPNetv2 graph to ONNX *without* its weights (needs torch and onnx; run once).

Why: the ONNX-only app (no torch installed) must run the published checkpoints, which may not be
redistributed inside Penwright. So what ships is the network's structure alone: every weight is an
initializer named exactly as in the checkpoint's state dict, stored as an *external* tensor whose data is
not there. At load time `onnx_espnet` reads the user's `.pth` with the torch-free reader and hands the
arrays to ONNX Runtime (`SessionOptions.add_external_initializers`), so the weights never touch disk.

The export traces the network with *marker* weights (distinct random values) so that the exporter's
deduplication of equal tensors cannot merge two weights, and checks afterwards that every initializer
is one state-dict entry, unchanged (no constant folding, no batch-norm fusion). A JSON file beside the
graph lists the initializers' shapes and the graph's SHA-256.

    python -m engine.segmentation.onnx_export --out resources/models
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
from pathlib import Path

import numpy as np
import torch

from engine.atomic import atomic_write_bytes, atomic_write_text
from engine.segmentation.espnetv2 import ESPNetv2Seg
from engine.segmentation.manifest import SegmentationWeights

OPSET = 17
WEIGHTS_LOCATION = "weights-from-the-checkpoint"  # never a file: the data comes from the .pth at load time


def graph_name(weights: SegmentationWeights) -> str:
    return f"{weights.meta.name}.graph.onnx"


def _marker_network(weights: SegmentationWeights) -> ESPNetv2Seg:
    net = ESPNetv2Seg(weights.meta.scale).eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for value in net.state_dict().values():
            if value.dtype.is_floating_point:  # positive, distinct: running_var stays valid
                value.copy_(torch.rand(value.shape, generator=generator) * 0.5 + 0.75)
    return net


def export_graph(weights: SegmentationWeights, out_dir: str | Path) -> tuple[Path, Path]:
    """Write <name>.graph.onnx (structure only) and <name>.graph.json; returns both paths."""
    import onnx
    from onnx import external_data_helper, numpy_helper

    net = _marker_network(weights)
    width, height = weights.meta.preprocessing.input_size
    example = torch.zeros(1, 3, height, width)
    buffer = io.BytesIO()
    torch.onnx.export(
        net,
        (example,),
        buffer,
        dynamo=False,
        do_constant_folding=False,  # keeps batch norm and every weight as it is in the state dict
        opset_version=OPSET,
        input_names=["image"],
        output_names=["logits"],
    )
    model = onnx.load_from_string(buffer.getvalue())
    state = {k: v.numpy() for k, v in net.state_dict().items()}
    shapes: dict[str, list[int]] = {}
    offset = 0
    for init in model.graph.initializer:
        value = numpy_helper.to_array(init)
        if init.name not in state or not np.array_equal(value, state[init.name]):
            raise RuntimeError(f"initializer {init.name!r} is not a state-dict entry as it is; cannot strip it")
        shapes[init.name] = list(value.shape)
        external_data_helper.set_external_data(init, WEIGHTS_LOCATION, offset, value.nbytes)
        init.ClearField("raw_data")
        init.ClearField("float_data")
        init.data_location = onnx.TensorProto.EXTERNAL
        offset += value.nbytes
    data = model.SerializeToString()
    _verify(net, data, state, shapes, example)
    out = Path(out_dir)
    graph = out / graph_name(weights)
    meta = out / graph_name(weights).replace(".onnx", ".json")
    atomic_write_bytes(graph, data)
    description = {
        "model": weights.meta.name,
        "input_size": [width, height],
        "opset": OPSET,
        "torch": torch.__version__,
        "graph_sha256": hashlib.sha256(data).hexdigest(),
        "initializers": shapes,
        "note": "structure only: the weights come from the published checkpoint at load time",
    }
    atomic_write_text(meta, json.dumps(description, indent=1) + "\n")
    return graph, meta


def _verify(net: ESPNetv2Seg, data: bytes, state: dict, shapes: dict, example: torch.Tensor) -> None:
    """The stripped graph plus the marker weights must give torch's logits (one random image).

    The graph has a fixed 1 x 3 x H x W input: with a dynamic batch the exporter loses the spatial sizes
    that the pyramid pooling needs as constants.
    """
    from engine.segmentation.onnx_espnet import session_with_weights

    session, _ = session_with_weights(data, {name: state[name] for name in shapes}, "exported graph")
    x = torch.randn(*example.shape, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        expected = net(x).numpy()
    (got,) = session.run(["logits"], {"image": x.numpy()})
    scale = float(np.abs(expected).max())
    if np.abs(got - expected).max() > 1e-4 * max(scale, 1.0):
        raise RuntimeError(f"ONNX graph differs from torch by {np.abs(got - expected).max():.3g}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="resources/models", help="folder for the graphs (default: %(default)s)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    for weights in (SegmentationWeights.ESPNETV2_S2_0_PASCAL_384, SegmentationWeights.ESPNETV2_S0_5_PASCAL_256):
        graph, meta = export_graph(weights, args.out)
        print(f"wrote {graph} ({graph.stat().st_size / 1024:.0f} KiB) and {meta}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
