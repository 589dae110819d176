"""ESPNetv2 segmentation network, checkpoint loading, torch-free .pth reader, pre/post-processing.

Tests marked needs_data compare against the published checkpoints and the reference outputs in
../shared/models/espnetv2 (or $PENWRIGHT_SHARED/models/espnetv2); nothing from there is copied into the repo.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.segmentation.errors import SegmentationModelError
from engine.segmentation.manifest import VOC_CLASSES, SegmentationWeights, voc_palette
from engine.segmentation.preprocessing import label_image, labels_from_logits, preprocess, resize_labels
from engine.segmentation.pth_reader import LEGACY_MAGIC, read_state_dict, unwrap_state_dict

torch = pytest.importorskip("torch")

from engine.segmentation.espnetv2 import ESPNetv2Seg  # noqa: E402
from engine.segmentation.models import build_network, load_network, read_checkpoint, segment  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
S2, S05 = SegmentationWeights.ESPNETV2_S2_0_PASCAL_384, SegmentationWeights.ESPNETV2_S0_5_PASCAL_256
MODEL_KEYS = {"s2.0": S2, "s0.5": S05}


def espnetv2_folder() -> Path | None:
    """$PENWRIGHT_SHARED/models/espnetv2 when the variable is set, else ../shared/models/espnetv2 beside the repo."""
    env = os.environ.get("PENWRIGHT_SHARED")
    folder = (Path(env) if env else REPO.parent / "shared") / "models" / "espnetv2"
    return folder if (folder / "reference" / "manifest.json").is_file() else None


SHARED = espnetv2_folder()
NO_DATA = "ESPNetv2 checkpoints/references not found: set PENWRIGHT_SHARED or place them at ../shared/models/espnetv2"


def _reference_cases() -> list:
    if SHARED is None:
        return [pytest.param(None, None, marks=pytest.mark.skip(reason=NO_DATA), id="no-data")]
    manifest = json.loads((SHARED / "reference" / "manifest.json").read_text())
    return [
        pytest.param(key, image, id=f"{image}-{key}")
        for key, model in manifest["models"].items()
        for image in model["per_image"]
    ]


@pytest.fixture(scope="module")
def shared() -> Path:
    if SHARED is None:
        pytest.skip(NO_DATA)
    return SHARED


@pytest.fixture(scope="module")
def networks(shared) -> dict[str, ESPNetv2Seg]:
    return {key: load_network(w, shared / w.meta.checkpoint) for key, w in MODEL_KEYS.items()}


def _random_network(weights: SegmentationWeights, seed: int = 0) -> ESPNetv2Seg:
    """Random weights plus non-trivial BN statistics, so eval-mode outputs are not degenerate."""
    torch.manual_seed(seed)
    network = build_network(weights)
    for module in network.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    return network


# --- network, no data ---------------------------------------------------------------------------------


@pytest.mark.parametrize("weights", [S2, S05], ids=["s2.0", "s0.5"])
def test_state_dict_layout_matches_the_published_inventory(weights):
    network = ESPNetv2Seg(weights.meta.scale)
    state = network.state_dict()
    assert len(state) == 526
    assert sum(p.numel() for p in network.parameters()) == weights.meta.parameters
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in network.modules()) == 67
    big = weights.meta.scale == 2.0
    shapes = {
        "base_net.level2_0.eesp.proj_1x1.conv.weight": (24, 8, 1, 1) if big else (4, 4, 1, 1),
        "base_net.level2_0.inp_reinf.1.conv.weight": (128, 3, 1, 1) if big else (32, 3, 1, 1),
        "base_net.level4.6.conv_1x1_exp.conv.weight": (512, 128, 1, 1) if big else (128, 32, 1, 1),
        "base_net.level3_0.eesp.module_act.weight": (128,) if big else (32,),
        "bu_dec_l1.br.br.1.weight": (64,),
        "bu_dec_l2.merge_layer.2.cbr.0.weight": (10, 5, 3, 3),
        "bu_dec_l4.merge_layer.3.bias": (21,),
        "merge_enc_dec_l2.expansion_layer.cbr.0.weight": (64, 4, 3, 3) if big else (64, 1, 3, 3),
        "merge_enc_dec_l3.expansion_layer.cbr.0.weight": (48, 8, 3, 3) if big else (48, 2, 3, 3),
        "merge_enc_dec_l2.wt_layer.1.weight": (64, 256, 1, 1) if big else (64, 64, 1, 1),
        "bu_br_l4.1.weight": (32,),
    }
    for key, shape in shapes.items():
        assert tuple(state[key].shape) == shape, key
    assert "bu_dec_l4.br.br.0.weight" not in state and "bu_dec_l3.merge_layer.3.bias" not in state


def test_level4_units_use_the_clamped_dilations():
    network = ESPNetv2Seg(0.5)
    assert [c.conv.dilation[0] for c in network.base_net.level4[0].spp_dw] == [1, 1, 2, 3]
    assert [c.conv.dilation[0] for c in network.base_net.level3[0].spp_dw] == [1, 2, 3, 4]
    assert [c.conv.stride[0] for c in network.base_net.level4_0.eesp.spp_dw] == [2, 2, 2, 2]


@pytest.mark.parametrize("size", [(16, 16), (37, 53), (64, 96), (100, 75)])
def test_any_size_gives_logits_of_the_input_size(size):
    network = _random_network(S05)
    with torch.no_grad():
        out = network(torch.randn(2, 3, *size))
    assert out.shape == (2, 21, *size)
    assert torch.isfinite(out).all() and out.std() > 0


def test_sizes_that_are_multiples_of_16_are_not_padded():
    network = _random_network(S05)
    x = torch.randn(1, 3, 48, 80)
    with torch.no_grad():
        assert torch.equal(network(x), network.forward_padded(x))
    with pytest.raises(ValueError, match="multiples of 16"):
        network.forward_padded(torch.randn(1, 3, 40, 48))
    with pytest.raises(ValueError, match="N x 3 x H x W"):
        network(torch.randn(3, 32, 32))


def test_batch_items_are_independent():
    network = _random_network(S05)
    x = torch.randn(3, 3, 64, 48)
    with torch.no_grad():
        together = network(x)
        alone = torch.cat([network(x[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(together, alone, atol=1e-4, rtol=1e-4)


def test_random_init_forward_and_segment_helper():
    network = _random_network(S05)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (45, 70, 3), dtype=np.uint8))
    result = segment(network, image, S05)
    assert result.logits.shape == (21, 256, 256) and result.logits.dtype == np.float32
    assert result.labels_netres.shape == (256, 256) and result.labels.shape == (45, 70)
    assert result.labels.dtype == np.uint8 and result.labels.max() < 21
    both = segment(network, [image, image.resize((33, 20))], S05)
    assert [r.labels.shape for r in both] == [(45, 70), (20, 33)]
    np.testing.assert_allclose(both[0].logits, result.logits, atol=1e-4)


# --- loading errors, no data ---------------------------------------------------------------------------


def test_strict_load_of_a_mismatched_state_dict_is_a_model_error():
    small = ESPNetv2Seg(0.5).state_dict()
    first = r"base_net.level1.conv.weight \(16, 3, 3, 3\) vs \(32, 3, 3, 3\)"
    with pytest.raises(
        SegmentationModelError, match=rf"does not fit espnetv2-s2.0-pascal-384: \d+ shape mismatches \({first}"
    ):
        build_network(S2, small)
    missing = dict(small)
    missing.pop("bu_dec_l4.merge_layer.3.bias")
    with pytest.raises(SegmentationModelError, match=r"1 missing keys \(bu_dec_l4.merge_layer.3.bias\)"):
        build_network(S05, missing)
    extra = {**small, "base_net.level5.conv.weight": torch.zeros(1)}
    with pytest.raises(SegmentationModelError, match=r"1 unexpected keys \(base_net.level5.conv.weight\)"):
        build_network(S05, extra)


def test_module_prefix_and_wrappers_are_unwrapped():
    state = {"a.weight": 1, "b.bias": 2}
    assert unwrap_state_dict({f"module.{k}": v for k, v in state.items()}) == state
    assert unwrap_state_dict({"state_dict": state, "epoch": 3}) == state
    with pytest.raises(SegmentationModelError, match="not a state dict"):
        unwrap_state_dict([1, 2])


def test_checkpoint_file_errors(tmp_path):
    with pytest.raises(SegmentationModelError, match="does not exist"):
        read_checkpoint(S05, tmp_path / "absent.pth")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(os.urandom(2048))
    with pytest.raises(SegmentationModelError, match="damaged"):
        read_checkpoint(S05, garbage)
    with pytest.raises(SegmentationModelError, match="not a readable PyTorch checkpoint"):
        read_checkpoint(S05, garbage, verify=False)
    truncated = tmp_path / "truncated.pth"
    torch.save(ESPNetv2Seg(0.5).state_dict(), truncated, _use_new_zipfile_serialization=False)
    truncated.write_bytes(truncated.read_bytes()[:-1000])
    with pytest.raises(SegmentationModelError, match="truncated"):
        load_network(S05, truncated, verify=False)


# --- torch-free .pth reader, no data --------------------------------------------------------------------


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_reader_round_trips_torch_save(tmp_path, zip_format):
    state = _random_network(S05).state_dict()
    state["strided"] = torch.arange(24.0).reshape(4, 6)[:, ::2].t()  # a non-contiguous view into a shared storage
    state["half"] = torch.randn(3, dtype=torch.float16)
    path = tmp_path / "state.pth"
    torch.save(state, path, _use_new_zipfile_serialization=zip_format)
    arrays = read_state_dict(path)
    assert list(arrays) == list(state)
    for key, tensor in state.items():
        assert arrays[key].dtype == tensor.numpy().dtype and arrays[key].shape == tuple(tensor.shape), key
        np.testing.assert_array_equal(arrays[key], tensor.numpy(), err_msg=key)
    assert not arrays["strided"].flags.writeable


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_reader_refuses_arbitrary_globals(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    legacy = tmp_path / "evil.pth"
    legacy.write_bytes(b"".join(pickle.dumps(x, protocol=2) for x in (LEGACY_MAGIC, 1001, {"little_endian": True})))
    with open(legacy, "ab") as handle:
        pickle.dump({"w": _Evil()}, handle, protocol=2)
    with pytest.raises(SegmentationModelError, match="refusing pickle global"):
        read_state_dict(legacy)
    assert not (tmp_path / "pwned").exists()


# --- manifest and label helpers, no data -----------------------------------------------------------------


def test_manifest_travels_with_the_weights():
    assert SegmentationWeights.DEFAULT is S2
    assert SegmentationWeights.by_name("espnetv2-s0.5-pascal-256") is S05
    for weights, size in ((S2, 384), (S05, 256)):
        meta = weights.meta
        assert meta.classes == VOC_CLASSES and meta.num_classes == 21 and meta.classes[15] == "person"
        assert meta.palette[:3] == ((0, 0, 0), (128, 0, 0), (0, 128, 0)) and meta.palette[20] == (0, 64, 128)
        assert meta.preprocessing.input_size == (size, size) and meta.train_size == (size, size)
        assert meta.preprocessing.mean == (0.485, 0.456, 0.406) and meta.preprocessing.std == (0.229, 0.224, 0.225)
        assert meta.preprocessing.resize == "stretch" and meta.preprocessing.resample == "bilinear"
        assert meta.licence == "MIT" and "Sachin Mehta" in meta.licence_holder
        assert meta.url.startswith("https://github.com/sacmehta/EdgeNets/") and meta.url.endswith(meta.checkpoint)
        assert len(meta.sha256) == 64
        json.dumps(meta.to_dict())
    assert S2.meta.sha256.startswith("bc479586") and S05.meta.sha256.startswith("9c7bebec")
    with pytest.raises(KeyError):
        SegmentationWeights.by_name("fcn-8s")


def test_label_helpers():
    logits = np.zeros((21, 4, 6), np.float32)
    logits[15, :2] = 1.0
    labels = labels_from_logits(logits)
    assert labels.dtype == np.uint8 and (labels[:2] == 15).all() and (labels[2:] == 0).all()
    assert labels_from_logits(logits[None]).shape == (1, 4, 6)
    big = resize_labels(labels, (12, 8))
    assert big.shape == (8, 12) and (big[:4] == 15).all() and (big[4:] == 0).all()
    image = label_image(labels)
    assert image.mode == "P" and image.size == (6, 4) and np.array_equal(np.asarray(image), labels)
    assert image.getpalette()[45:48] == list(voc_palette()[15])
    x = preprocess(Image.new("RGB", (10, 7), (255, 0, 128)), S05.meta.preprocessing)
    assert x.shape == (3, 256, 256) and x.dtype == np.float32
    np.testing.assert_allclose(
        x[:, 0, 0], [(1 - 0.485) / 0.229, -0.456 / 0.224, (128 / 255 - 0.406) / 0.225], rtol=1e-6
    )


def test_torch_free_modules_import_without_torch():
    code = (
        "import sys; sys.modules['torch'] = None\nimport engine.segmentation.models, engine.segmentation.preprocessing"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)


# --- against the published checkpoints and reference outputs ------------------------------------------------


@pytest.mark.needs_data
@pytest.mark.parametrize("key", list(MODEL_KEYS))
def test_reader_matches_torch_load(shared, key):
    path = shared / MODEL_KEYS[key].meta.checkpoint
    arrays = read_checkpoint(MODEL_KEYS[key], path)
    tensors = torch.load(path, map_location="cpu", weights_only=True)
    assert list(arrays) == list(tensors) and len(arrays) == 526
    for name, tensor in tensors.items():
        assert arrays[name].dtype == tensor.numpy().dtype, name
        np.testing.assert_array_equal(arrays[name], tensor.numpy(), err_msg=name)


@pytest.mark.needs_data
def test_the_other_checkpoint_is_refused(shared):
    other = shared / S05.meta.checkpoint
    with pytest.raises(SegmentationModelError, match="is not the espnetv2-s2.0-pascal-384 checkpoint"):
        load_network(S2, other)
    with pytest.raises(SegmentationModelError, match="does not fit espnetv2-s2.0-pascal-384: 3\\d\\d shape mismatches"):
        load_network(S2, other, verify=False)


@pytest.mark.needs_data
def test_reader_works_with_torch_blocked(shared, tmp_path):
    out = tmp_path / "arrays.npz"
    code = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None
        import numpy as np
        from engine.segmentation.models import read_checkpoint
        from engine.segmentation.manifest import SegmentationWeights
        arrays = read_checkpoint(SegmentationWeights.ESPNETV2_S0_5_PASCAL_256, {str(shared / S05.meta.checkpoint)!r})
        assert "torch" not in sys.modules or sys.modules["torch"] is None
        np.savez({str(out)!r}, **arrays)
    """)
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=120)
    tensors = torch.load(shared / S05.meta.checkpoint, map_location="cpu", weights_only=True)
    with np.load(out) as arrays:
        assert sorted(arrays.files) == sorted(tensors)
        for name, tensor in tensors.items():
            np.testing.assert_array_equal(arrays[name], tensor.numpy(), err_msg=name)


@pytest.mark.needs_data
@pytest.mark.parametrize(("key", "image_tag"), _reference_cases())
def test_reference_agreement(shared, networks, key, image_tag, record_property):
    """Same input tensor, logits within float16 rounding of the reference, same labels at both sizes."""
    weights, ref = MODEL_KEYS[key], shared / "reference"
    tag = f"{image_tag}_{key}"
    manifest = json.loads((ref / "manifest.json").read_text())
    image = Image.open(ref / manifest["images"][image_tag]["source"])
    reference_input = np.load(ref / f"{tag}_input.npy")
    np.testing.assert_array_equal(preprocess(image, weights.meta.preprocessing), reference_input)

    with torch.no_grad():
        logits = networks[key](torch.from_numpy(reference_input)[None])[0].numpy()
    max_diff = float(np.abs(logits - np.load(ref / f"{tag}_logits.npy").astype(np.float32)).max())

    result = segment(networks[key], image, weights)
    netres = np.asarray(Image.open(ref / f"{tag}_label_netres.png"))
    origsize = np.asarray(Image.open(ref / f"{tag}_label_origsize.png"))
    agree_netres = float((result.labels_netres == netres).mean() * 100)
    agree_orig = float((result.labels == origsize).mean() * 100)
    record_property("max_abs_logit_diff", max_diff)
    record_property("label_agreement_netres_pct", agree_netres)
    record_property("label_agreement_origsize_pct", agree_orig)
    print(f"{tag}: max |logit diff| {max_diff:.6f}, labels {agree_netres:.4f}% (net), {agree_orig:.4f}% (orig)")

    assert max_diff <= 0.01  # float16 storage of the reference: <= 0.0078 at these magnitudes
    assert result.labels.shape == origsize.shape
    assert agree_netres >= 99.99 and agree_orig >= 99.99  # only exact float ties may flip
