"""The shipped model format: round trips, and readable errors for damaged or foreign files."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from engine.handwriting.checkpoint import FORMAT, FORMAT_VERSION, ModelFileError, load_model_file, save_model_file

META = {
    "config": {"kind": "synthesis", "hidden": 4, "layers": 1, "mixtures": 1, "window": 1, "alphabet_size": 2},
    "alphabet": {"characters": "ab", "rare": ""},
    "normalizer": {"mean": [1.0, 2.0], "std": [3.0, 4.0]},
    "convention": "skip2",
    "training": {"step": 12},
}


def _weights():
    rng = np.random.default_rng(0)
    return {"layer.weight": rng.normal(size=(3, 4)).astype(np.float32), "layer.bias": rng.normal(size=3)}


def test_round_trip_keeps_metadata_and_fp16_weights(tmp_path):
    path = tmp_path / "m.npz"
    weights = _weights()
    save_model_file(path, META, weights)
    model = load_model_file(path)
    assert model.meta == {"format": FORMAT, "format_version": FORMAT_VERSION, **META}
    assert model.kind == "synthesis"
    assert set(model.weights) == set(weights)
    for name, value in weights.items():
        assert model.weights[name].dtype == np.float32
        np.testing.assert_array_equal(model.weights[name], value.astype(np.float16).astype(np.float32))
    # a model file needs numpy only: no pickles inside
    with np.load(path, allow_pickle=False) as data:
        assert json.loads(str(data["meta"]))["format"] == FORMAT


def test_exported_model_rebuilds_the_trained_network(tmp_path):
    torch = pytest.importorskip("torch")
    from engine_helpers import make_tiny_trainer

    from engine.backends.torch_backend import build_network

    trainer = make_tiny_trainer(tmp_path / "run")
    path = tmp_path / "tiny.npz"
    trainer.export_model(path)
    model = load_model_file(path)
    assert model.meta["config"] == trainer.config.to_dict()
    assert model.meta["alphabet"] == trainer.alphabet.to_dict()
    net = build_network(model)
    for name, value in trainer.model.state_dict().items():
        torch.testing.assert_close(net.state_dict()[name], value.half().float())
    # weights that do not fit the configuration are a model file error, not a torch traceback
    model.meta["config"]["hidden"] += 1
    with pytest.raises(ModelFileError, match="do not match"):
        build_network(model)


def _valid_bytes(tmp_path) -> bytes:
    path = tmp_path / "valid.npz"
    save_model_file(path, META, _weights())
    return path.read_bytes()


def _damaged(tmp_path, kind: str) -> bytes:
    valid = _valid_bytes(tmp_path)
    if kind == "random":
        return np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    if kind == "truncated":
        return valid[: len(valid) // 2]
    if kind == "empty":
        return b""
    if kind == "flipped":  # a damaged byte in the middle of the zip's data
        data = bytearray(valid)
        data[len(data) // 3] ^= 0xFF
        data[len(data) // 3 + 1] ^= 0xFF
        return bytes(data)
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["random", "truncated", "empty", "flipped"])
def test_corrupt_files_raise_a_readable_model_file_error(tmp_path, kind):
    path = tmp_path / f"{kind}.npz"
    path.write_bytes(_damaged(tmp_path, kind))
    with pytest.raises(ModelFileError) as info:
        load_model_file(path)
    message = str(info.value)
    assert str(path) in message and "not a readable Penwright model file" in message
    assert "\n" not in message


def _npz(path, **arrays) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path.write_bytes(buffer.getvalue())


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"weights": np.arange(3)}, "not a readable Penwright model file"),
        ({"meta": np.array("{not json")}, "not a readable Penwright model file"),
        ({"meta": np.array(json.dumps({**META, "format": "someone-else"}))}, "not a Penwright handwriting model"),
        ({"meta": np.array(json.dumps({**META, "format": FORMAT, "format_version": 99}))}, "newer Penwright"),
        (
            {"meta": np.array(json.dumps({"format": FORMAT, **{k: v for k, v in META.items() if k != "normalizer"}}))},
            "lacks its 'normalizer' metadata",
        ),
    ],
    ids=["no-meta", "bad-json", "other-format", "newer-version", "no-normalizer"],
)
def test_foreign_npz_files_raise_model_file_error(tmp_path, arrays, message):
    path = tmp_path / "foreign.npz"
    _npz(path, **arrays)
    with pytest.raises(ModelFileError, match=message) as info:
        load_model_file(path)
    assert str(path) in str(info.value)


def test_npz_whose_meta_is_not_an_object_raises_model_file_error(tmp_path):
    path = tmp_path / "list-meta.npz"
    _npz(path, meta=np.array("[1, 2, 3]"))
    with pytest.raises(ModelFileError):
        load_model_file(path)


def test_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model_file(tmp_path / "absent.npz")


def test_writer_refuses_damaged_and_prediction_models(tmp_path):
    pytest.importorskip("torch")
    from engine_helpers import make_tiny_trainer

    from engine.handwriting.writer import HandwritingWriter

    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(_damaged(tmp_path, "truncated"))
    with pytest.raises(ModelFileError):
        HandwritingWriter.load(damaged)
    prediction = tmp_path / "prediction.npz"
    make_tiny_trainer(tmp_path / "run", kind="prediction").export_model(prediction)
    assert load_model_file(prediction).kind == "prediction"
    with pytest.raises(ModelFileError, match="synthesis model"):
        HandwritingWriter.load(prediction)
