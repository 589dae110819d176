"""The ONNX Runtime backend: export, parity with the PyTorch backend, damaged files, and no torch on its path."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxscript")
ort = pytest.importorskip("onnxruntime")

from engine_helpers import make_tiny_trainer, synthetic_sequences  # noqa: E402

from engine.backends import onnx_backend  # noqa: E402
from engine.backends.onnx_backend import OnnxStepper, manifest_path_for, sha256_bytes  # noqa: E402
from engine.backends.onnx_export import export_onnx  # noqa: E402
from engine.backends.torch_backend import TorchStepper  # noqa: E402
from engine.handwriting.checkpoint import ModelFileError, load_model_file  # noqa: E402
from engine.handwriting.sampling import generate, prime_state  # noqa: E402
from engine.handwriting.writer import HandwritingWriter, Prime  # noqa: E402

# Exporting runs torch.export (about 5 s a network on the shared 2-core machine).
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
LONG = "abc cab bca abc ab ca bc a"  # long enough for well over 100 steps


@pytest.fixture(scope="session")
def synthesis_npz(tiny_synthesis_model, tmp_path_factory) -> Path:
    """The tiny synthesis model file with its exported network beside it (in a folder of its own)."""
    folder = tmp_path_factory.mktemp("onnx-synthesis")
    path = folder / tiny_synthesis_model.name
    shutil.copyfile(tiny_synthesis_model, path)
    export_onnx(path)
    return path


@pytest.fixture(scope="session")
def prediction_npz(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("onnx-prediction")
    trainer = make_tiny_trainer(folder / "run", kind="prediction")
    trainer.run(steps=3, progress=False)
    path = folder / "tiny-prediction.npz"
    trainer.export_model(path)
    export_onnx(path)
    return path


@pytest.fixture(scope="module")
def writers(synthesis_npz) -> tuple[HandwritingWriter, HandwritingWriter]:
    return HandwritingWriter.load(synthesis_npz, backend="torch"), HandwritingWriter.load(synthesis_npz, "onnx")


def copy_model(npz: Path, folder: Path, stem: str | None = None) -> Path:
    """The model file, its .onnx and manifest copied into ``folder`` (renamed to ``stem``)."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = stem or npz.stem
    target = folder / f"{stem}.npz"
    shutil.copyfile(npz, target)
    shutil.copyfile(npz.with_suffix(".onnx"), target.with_suffix(".onnx"))
    shutil.copyfile(manifest_path_for(npz.with_suffix(".onnx")), manifest_path_for(target.with_suffix(".onnx")))
    return target


def torch_state(state) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in state.items()}


# ----- export -----------------------------------------------------------------------------------------------------
def test_export_writes_the_step_graph_and_its_manifest(synthesis_npz):
    onnx_file = synthesis_npz.with_suffix(".onnx")
    manifest = json.loads(manifest_path_for(onnx_file).read_text())
    meta = load_model_file(synthesis_npz).meta
    assert manifest["kind"] == "synthesis" and manifest["name"] == synthesis_npz.stem
    assert manifest["onnx_sha256"] == sha256_bytes(onnx_file.read_bytes())
    assert manifest["source"]["sha256"] == sha256_bytes(synthesis_npz.read_bytes())
    for key in ("alphabet", "normalizer", "convention", "config"):
        assert manifest[key] == meta[key]
    assert manifest["chars_per_step"] == meta["config"]["chars_per_step"]
    assert manifest["verified_max_abs_diff"] < 1e-4
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
    shapes = {i.name: i.shape for i in session.get_inputs()}
    cfg = meta["config"]
    assert shapes["x"][1] == 3 and isinstance(shapes["x"][0], str)  # dynamic batch
    assert all(isinstance(d, str) for d in shapes["text"][:2])  # dynamic batch and text length
    assert shapes["text"][2] == cfg["alphabet_size"]
    assert shapes["h"][0] == cfg["layers"] and shapes["h"][2] == cfg["hidden"]
    assert [o.name for o in session.get_outputs()] == list(onnx_backend.SYNTHESIS_OUTPUTS)


# ----- parity ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1])
def test_written_lines_match_the_torch_backend(writers, seed):
    torch_writer, onnx_writer = writers
    assert isinstance(onnx_writer.stepper, OnnxStepper) and onnx_writer.stepper.provider == "CPUExecutionProvider"
    texts = [LONG, "ca ba", "b a c"]
    a = torch_writer.write(texts, bias=0.5, seed=seed, record=True)
    b = onnx_writer.write(texts, bias=0.5, seed=seed, record=True)
    assert len(a[0].offsets) >= 100
    for x, y in zip(a, b, strict=True):
        assert len(x.offsets) == len(y.offsets) and x.stopped_by_window == y.stopped_by_window
        np.testing.assert_allclose(x.offsets[:100], y.offsets[:100], atol=1e-3, rtol=0)
        np.testing.assert_allclose(x.window, y.window, atol=1e-4)


def test_raw_step_outputs_match_the_torch_backend(synthesis_npz):
    model = load_model_file(synthesis_npz)
    torch_stepper = TorchStepper(model)
    onnx_stepper = OnnxStepper(synthesis_npz.with_suffix(".onnx"), model, device="cpu", model_path=synthesis_npz)
    chars = np.full((3, 9), -1, np.int64)
    chars[0, :8], chars[1, :3], chars[2, :5] = [0, 1, 2, 3, 0, 1, 2, 0], [2, 1, 0], [1, 3, 1, 3, 2]
    ts, os_ = torch_stepper.start(chars), onnx_stepper.start(chars)
    rng = np.random.default_rng(4)
    worst = 0.0
    for _ in range(40):
        x = rng.normal(0, 1, (3, 3)).astype(np.float32)
        x[:, 2] = rng.random(3) < 0.2
        y_t, phi_t, ts = torch_stepper.step(x, ts)
        y_o, phi_o, os_ = onnx_stepper.step(x, os_)
        assert y_o.shape == y_t.shape and phi_o.shape == phi_t.shape == chars.shape
        worst = max(worst, np.abs(y_t - y_o).max(), np.abs(phi_t - phi_o).max())
    for key, value in torch_state(ts[1]).items():
        np.testing.assert_allclose(os_[1][key], value, atol=1e-4, rtol=1e-5)
    assert worst < 1e-4, worst


def test_priming_matches_the_torch_backend(writers):
    torch_writer, onnx_writer = writers
    seqs, _, _ = synthetic_sequences(3, seed=7)
    inputs, chars = seqs.strokes[0], torch_writer.alphabet.encode(seqs.texts[0] + " ")
    primed_t = prime_state(torch_writer.stepper, inputs, chars)
    primed_o = prime_state(onnx_writer.stepper, inputs, chars)
    for key, value in torch_state(primed_t.state).items():
        assert primed_o.state[key].shape == value.shape
        np.testing.assert_allclose(primed_o.state[key], value, atol=1e-4, rtol=1e-5)
    prime = Prime(torch_writer.normalizer.denormalize(inputs), seqs.texts[0])
    a = torch_writer.write([LONG, "ab"], bias=0.3, seed=2, prime=prime)
    b = onnx_writer.write([LONG, "ab"], bias=0.3, seed=2, prime=prime)
    for x, y in zip(a, b, strict=True):
        assert len(x.offsets) == len(y.offsets)
        np.testing.assert_allclose(x.offsets[:100], y.offsets[:100], atol=1e-3, rtol=0)


def test_a_page_in_an_invented_hand_matches_the_torch_backend(writers):
    """Both backends continue from the state they finished the hand in (their own, kept, not read again)."""
    torch_writer, onnx_writer = writers
    hand_t, hand_o = torch_writer.invented_hand(4, 0.3), onnx_writer.invented_hand(4, 0.3)
    np.testing.assert_allclose(hand_o.offsets, hand_t.offsets, atol=1e-3, rtol=0)
    kept_o = onnx_writer.primed_state(hand_o)
    chars = onnx_writer.alphabet.encode(hand_o.text + " ")  # the window saw the word space that follows a prime
    read = prime_state(onnx_writer.stepper, onnx_writer.normalizer.normalize(hand_o.offsets), chars)
    for key, value in read.state.items():
        np.testing.assert_allclose(kept_o.state[key], value, atol=1e-5, err_msg=key)
    a = torch_writer.write([LONG, "ab"], bias=0.3, seed=4, one_hand=True)
    b = onnx_writer.write([LONG, "ab"], bias=0.3, seed=4, one_hand=True)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x.offsets[:100], y.offsets[:100], atol=1e-3, rtol=0)


def test_the_prediction_network_matches_the_torch_backend(prediction_npz):
    model = load_model_file(prediction_npz)
    torch_stepper = TorchStepper(model)
    onnx_stepper = OnnxStepper(prediction_npz.with_suffix(".onnx"), model, device="cpu", model_path=prediction_npz)
    assert not onnx_stepper.synthesis and onnx_stepper.mixtures == model.meta["config"]["mixtures"]
    seqs, _, _ = synthetic_sequences(2, seed=3)
    chars = np.zeros(1, np.int64)
    primed_t = torch_stepper.prime(seqs.strokes[0][:-1], chars)
    primed_o = onnx_stepper.prime(seqs.strokes[0][:-1], chars)
    for key, value in torch_state(primed_t).items():
        np.testing.assert_allclose(primed_o[key], value, atol=1e-4, rtol=1e-5)
    batch = np.zeros((2, 1), np.int64)
    ts, os_ = torch_stepper.start(batch, primed_t), onnx_stepper.start(batch, primed_o)
    x = np.repeat(seqs.strokes[0][-1:], 2, 0)
    for _ in range(20):
        y_t, phi_t, ts = torch_stepper.step(x, ts)
        y_o, phi_o, os_ = onnx_stepper.step(x, os_)
        assert phi_t is None and phi_o is None
        np.testing.assert_allclose(y_o, y_t, atol=1e-4, rtol=1e-5)
        x = np.tanh(y_o[:, :3]).astype(np.float32)


# ----- choosing the backend and provider ---------------------------------------------------------------------------
def test_auto_prefers_onnx_when_the_file_is_there(synthesis_npz, tmp_path):
    assert isinstance(HandwritingWriter.load(synthesis_npz, backend="auto").stepper, OnnxStepper)
    bare = tmp_path / "bare.npz"
    shutil.copyfile(synthesis_npz, bare)
    assert isinstance(HandwritingWriter.load(bare, backend="auto").stepper, TorchStepper)
    with pytest.raises(ModelFileError, match="does not exist"):
        HandwritingWriter.load(bare, backend="onnx")
    with pytest.raises(ValueError, match="unknown backend"):
        HandwritingWriter.load(synthesis_npz, backend="tensorflow")


def test_a_failing_cuda_provider_falls_back_to_the_cpu(synthesis_npz, monkeypatch):
    real_session = ort.InferenceSession

    def session(data, options, providers):
        if any("CUDA" in (p if isinstance(p, str) else p[0]) for p in providers):
            raise RuntimeError("libcudnn.so.9: cannot open shared object file")
        return real_session(data, options, providers=providers)

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(ort, "InferenceSession", session)
    with pytest.warns(RuntimeWarning, match="CUDA provider failed"):
        stepper = OnnxStepper(synthesis_npz.with_suffix(".onnx"), device="auto")
    assert stepper.provider == "CPUExecutionProvider"
    assert len(stepper.notices) == 1 and "libcudnn" in stepper.notices[0]
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    with pytest.warns(RuntimeWarning, match="no CUDA provider"):
        stepper = OnnxStepper(synthesis_npz.with_suffix(".onnx"), device="cuda")
    assert stepper.provider == "CPUExecutionProvider"
    assert OnnxStepper(synthesis_npz.with_suffix(".onnx"), device="auto").notices == []


# ----- damaged and mismatched files ------------------------------------------------------------------------------
def test_a_damaged_onnx_file_raises_model_file_error(synthesis_npz, tmp_path):
    npz = copy_model(synthesis_npz, tmp_path)
    onnx_file = npz.with_suffix(".onnx")
    onnx_file.write_bytes(onnx_file.read_bytes()[:500])
    with pytest.raises(ModelFileError, match="sha256"):
        HandwritingWriter.load(npz, backend="onnx")
    # damaged, with a manifest that vouches for the damage: ONNX Runtime's own error, as a ModelFileError
    manifest_file = manifest_path_for(onnx_file)
    manifest = json.loads(manifest_file.read_text())
    manifest["onnx_sha256"] = sha256_bytes(onnx_file.read_bytes())
    manifest_file.write_text(json.dumps(manifest))
    with pytest.raises(ModelFileError, match="could not be loaded by ONNX Runtime"):
        HandwritingWriter.load(npz, backend="auto")
    manifest_file.write_text("{not json")
    with pytest.raises(ModelFileError, match="not a readable ONNX manifest"):
        HandwritingWriter.load(npz, backend="onnx")
    manifest_file.unlink()
    with pytest.raises(ModelFileError, match="no manifest"):
        HandwritingWriter.load(npz, backend="onnx")


def test_mismatched_files_raise_model_file_error(synthesis_npz, prediction_npz, tmp_path):
    npz = copy_model(synthesis_npz, tmp_path / "sha")
    manifest_file = manifest_path_for(npz.with_suffix(".onnx"))
    manifest = json.loads(manifest_file.read_text())
    manifest_file.write_text(json.dumps({**manifest, "onnx_sha256": "0" * 64}))
    with pytest.raises(ModelFileError, match="does not match its manifest"):
        HandwritingWriter.load(npz, backend="onnx")
    # an .onnx exported from another version of the model file
    manifest_file.write_text(json.dumps({**manifest, "source": {**manifest["source"], "sha256": "1" * 64}}))
    with pytest.raises(ModelFileError, match="another version"):
        HandwritingWriter.load(npz, backend="onnx")
    # a prediction network beside a synthesis model file
    wrong = copy_model(prediction_npz, tmp_path / "kind", stem="tiny")
    shutil.copyfile(synthesis_npz, wrong)
    with pytest.raises(ModelFileError, match="prediction network"):
        HandwritingWriter.load(wrong, backend="onnx")
    # the manifest's metadata must be the model file's
    npz = copy_model(synthesis_npz, tmp_path / "alphabet")
    manifest_file = manifest_path_for(npz.with_suffix(".onnx"))
    manifest_file.write_text(json.dumps({**manifest, "alphabet": {"characters": "xyz ", "rare": ""}}))
    with pytest.raises(ModelFileError, match="alphabet"):
        HandwritingWriter.load(npz, backend="onnx")


# ----- no torch on the ONNX path ----------------------------------------------------------------------------------
def test_the_onnx_path_imports_no_torch(synthesis_npz, writers):
    code = f"""
import sys
sys.modules["torch"] = None  # any import of torch now fails
from engine.handwriting.writer import HandwritingWriter
for backend in ("onnx", "auto"):
    writer = HandwritingWriter.load({str(synthesis_npz)!r}, backend=backend)
    assert type(writer.stepper).__name__ == "OnnxStepper", backend
line = writer.write(["abc ab"], bias=0.5, seed=3)[0]
assert not [m for m, v in sys.modules.items() if m.split(".")[0] == "torch" and v is not None]
print(len(line.offsets), repr(float(line.offsets[:, :2].sum())))
"""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    n, total = done.stdout.split()
    expected = writers[1].write(["abc ab"], bias=0.5, seed=3)[0]
    assert int(n) == len(expected.offsets)
    assert float(total) == pytest.approx(float(expected.offsets[:, :2].sum()), abs=1e-3)


class _NoSelect:
    """The same network without ``select``: every line stays in the batch until the longest ends."""

    def __init__(self, stepper):
        self._stepper = stepper
        self.mixtures, self.synthesis = stepper.mixtures, stepper.synthesis

    def start(self, chars, primed=None):
        return self._stepper.start(chars, primed)

    def step(self, x, state):
        return self._stepper.step(x, state)


@pytest.mark.parametrize("which", [0, 1], ids=["torch", "onnx"])
def test_finished_lines_leave_the_batch_without_changing_any_line(writers, which):
    writer = writers[which]
    assert hasattr(writer.stepper, "select")
    texts = ["abc ab", "ca", "b a c", "a"]
    chars = [writer.alphabet.encode(t) for t in texts]
    kwargs = dict(normalizer=writer.normalizer, chars_per_step=writer.chars_per_step, bias=0.5, record=True)
    shrinking = generate(writer.stepper, chars, rng=np.random.default_rng(3), **kwargs)
    full = generate(_NoSelect(writer.stepper), chars, rng=np.random.default_rng(3), **kwargs)
    assert len({len(o) for o in full.offsets}) > 1  # lines end at different steps: the batch did shrink
    for a, b in zip(shrinking.offsets, full.offsets, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)
    for a, b in zip(shrinking.window, full.window, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)
    np.testing.assert_array_equal(shrinking.stopped_by_window, full.stopped_by_window)


@pytest.mark.parametrize("which", [0, 1], ids=["torch", "onnx"])
def test_a_rows_state_kept_and_put_back_steps_as_it_did(writers, which):
    """What the lost rule (sampling.stream's lost_steps) relies on: one row put back, the others untouched."""
    stepper = writers[which].stepper
    chars = np.array([writers[which].alphabet.encode(t)[:2] for t in ("ab", "ca", "bc")])
    state = stepper.start(chars)
    rng = np.random.default_rng(0)
    xs = rng.normal(0, 1, (8, 3, 3)).astype(np.float32)
    for x in xs[:3]:
        _, _, state = stepper.step(x, state)
    kept = stepper.row_state(state, 1)
    y_then, _, after = stepper.step(xs[3], state)
    for x in xs[4:]:
        _, _, after = stepper.step(x, after)
    y_other, _, _ = stepper.step(xs[3], after)
    put_back = stepper.set_row_state(after, 1, kept)
    y_again, _, _ = stepper.step(xs[3], put_back)
    np.testing.assert_allclose(y_again[1], y_then[1], atol=1e-5)  # row 1 as it was
    np.testing.assert_allclose(y_again[[0, 2]], y_other[[0, 2]], atol=1e-5)  # rows 0 and 2 as they are
    assert not np.allclose(y_again[1], y_other[1], atol=1e-3)
