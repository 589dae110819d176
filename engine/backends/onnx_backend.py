"""ONNX Runtime backend: runs an exported handwriting network one step at a time, without torch.

A model file ``NAME.npz`` is exported once (``python -m engine.backends.onnx_export NAME.npz``, which
needs torch) to ``NAME.onnx`` plus its manifest ``NAME.onnx.json``; this module needs only numpy and
onnxruntime. The graph is ONE generation step with dynamic batch ``B`` and text length ``U``:

- synthesis inputs: ``x`` (B, 3) float32, ``text`` (B, U, A) float32 one-hot characters with zero rows for
  padding (:func:`one_hot_text`, made once per batch), ``h`` and ``c`` (L, B, H), ``kappa`` (B, K), ``w`` (B, A);
  outputs: ``y`` (B, 1+6M) raw mixture outputs, ``phi`` (B, U) window weights, and the new state
  ``h_out``, ``c_out``, ``kappa_out``, ``w_out``.
- prediction inputs: ``x``, ``h``, ``c``; outputs: ``y``, ``h_out``, ``c_out``.

The manifest holds the model's name, kind, alphabet, normalisation statistics, point convention,
chars_per_step and config, the sha256 of the .onnx and of the model file it came from; a file that does
not match its manifest (or a manifest that does not match the model file) raises ModelFileError.

Providers: ``device="auto"`` uses CUDA when onnxruntime offers it, else the CPU; ``"cuda"``/``"cuda:N"``
asks for CUDA (falling back to the CPU with a notice when it is missing or fails); ``"cpu"`` is the CPU.
``OnnxStepper.provider`` names the provider in use and ``notices`` says why it is not the one asked for.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort

from engine.handwriting.checkpoint import ModelFile, ModelFileError

MANIFEST_FORMAT = "penwright-onnx-model"
MANIFEST_VERSION = 2  # the step graph's interface (inputs, outputs, their meaning); 2: one-hot text in

SYNTHESIS_INPUTS = ("x", "text", "h", "c", "kappa", "w")
SYNTHESIS_OUTPUTS = ("y", "phi", "h_out", "c_out", "kappa_out", "w_out")
PREDICTION_INPUTS = ("x", "h", "c")
PREDICTION_OUTPUTS = ("y", "h_out", "c_out")
STATE_KEYS = {"synthesis": ("h", "c", "kappa", "w"), "prediction": ("h", "c")}

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"


def one_hot_text(chars: np.ndarray, alphabet_size: int) -> np.ndarray:
    """(B, U) character indices, -1 for padding -> (B, U, A) float32 one-hot, zero rows for padding: the
    synthesis step graph's ``text`` input, made once per batch rather than inside every step."""
    chars = np.asarray(chars, np.int64)
    text = np.zeros((*chars.shape, alphabet_size), np.float32)
    b, u = np.nonzero(chars >= 0)
    text[b, u, chars[b, u]] = 1.0
    return text


def onnx_path_for(model_path: str | Path) -> Path:
    """The exported network beside a model file: same folder, same stem, ``.onnx``."""
    return Path(model_path).with_suffix(".onnx")


def manifest_path_for(onnx_path: str | Path) -> Path:
    onnx_path = Path(onnx_path)
    return onnx_path.with_name(onnx_path.name + ".json")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def export_hint(onnx_path: Path) -> str:
    return f"export it again: python -m engine.backends.onnx_export {onnx_path.with_suffix('.npz')} -o {onnx_path}"


def read_manifest(onnx_path: str | Path) -> dict:
    """The manifest beside an exported network, checked for format and completeness (not yet the sha)."""
    onnx_path = Path(onnx_path)
    path = manifest_path_for(onnx_path)
    if not path.exists():
        raise ModelFileError(f"the ONNX network {onnx_path} has no manifest {path.name}; {export_hint(onnx_path)}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path} is not a readable ONNX manifest ({exc.__class__.__name__}: {exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise ModelFileError(f"{path} is not a Penwright ONNX manifest")
    if manifest.get("format_version") != MANIFEST_VERSION:
        raise ModelFileError(
            f"{path} describes step-graph version {manifest.get('format_version')!r}, this Penwright reads "
            f"version {MANIFEST_VERSION}; {export_hint(onnx_path)}"
        )
    for key in ("kind", "config", "alphabet", "normalizer", "convention", "chars_per_step", "onnx_sha256"):
        if key not in manifest:
            raise ModelFileError(f"{path} lacks its {key!r} entry; {export_hint(onnx_path)}")
    if manifest["kind"] not in STATE_KEYS or manifest["config"].get("kind") != manifest["kind"]:
        raise ModelFileError(f"{path} names an unknown model kind {manifest['kind']!r}")
    return manifest


def check_against_model(manifest: dict, model: ModelFile, onnx_path: Path, model_path: str | Path | None) -> None:
    """The exported network must be the one in the model file: same kind, config, alphabet, statistics."""
    if manifest["kind"] != model.kind:
        raise ModelFileError(
            f"{onnx_path} holds a {manifest['kind']} network but the model file is a {model.kind} model"
        )
    for key in ("config", "alphabet", "normalizer", "convention"):
        if manifest[key] != model.meta[key]:
            raise ModelFileError(
                f"{onnx_path} was exported from another model (its {key} differs from the model file's); "
                + export_hint(onnx_path)
            )
    source = manifest.get("source", {}).get("sha256")
    if model_path is not None and source is not None:
        actual = sha256_bytes(Path(model_path).read_bytes())
        if actual != source:
            raise ModelFileError(
                f"{onnx_path} was exported from another version of {Path(model_path).name} (sha256 differs); "
                + export_hint(onnx_path)
            )


def _cuda_device_id(device: str) -> int:
    _, _, index = device.partition(":")
    try:
        return int(index) if index else 0
    except ValueError:
        raise ValueError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N") from None


class OnnxStepper:
    """The Stepper protocol (engine.handwriting.sampling) over an exported step graph."""

    def __init__(
        self,
        onnx_path: str | Path,
        model: ModelFile | None = None,
        device: str = "auto",
        threads: int | None = 1,
        model_path: str | Path | None = None,
    ):
        """``model`` (and ``model_path``, the .npz it was read from) are checked against the manifest when
        given; without them the manifest alone describes the network. ``threads`` as in TorchStepper: one
        step of a small batch is latency-bound, so one thread is the default."""
        self.path = Path(onnx_path)
        self.notices: list[str] = []
        if not self.path.exists():
            raise ModelFileError(f"the ONNX network {self.path} does not exist; {export_hint(self.path)}")
        manifest = read_manifest(self.path)
        data = self.path.read_bytes()
        if sha256_bytes(data) != manifest["onnx_sha256"]:
            raise ModelFileError(
                f"{self.path} does not match its manifest (sha256 differs): the file is damaged or was replaced; "
                + export_hint(self.path)
            )
        if model is not None:
            check_against_model(manifest, model, self.path, model_path)
        self.manifest = manifest
        self.config: dict = manifest["config"]
        self.kind: str = manifest["kind"]
        self.synthesis = self.kind == "synthesis"
        self.mixtures: int = int(self.config["mixtures"])
        self._inputs = SYNTHESIS_INPUTS if self.synthesis else PREDICTION_INPUTS
        self._outputs = SYNTHESIS_OUTPUTS if self.synthesis else PREDICTION_OUTPUTS
        self._state_keys = STATE_KEYS[self.kind]
        self._output_names = list(self._outputs)
        self.session = self._open(data, device, threads)
        self.provider: str = self.session.get_providers()[0]

    @property
    def description(self) -> str:
        return f"ONNX Runtime {ort.__version__}, {self.provider}"

    # ----- session ------------------------------------------------------------------------------------------
    def _providers(self, device: str) -> list:
        if device == "cpu":
            return [CPU]
        if device != "auto" and not device.startswith(("cuda", "gpu")):
            raise ValueError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N")
        if CUDA in ort.get_available_providers():
            return [(CUDA, {"device_id": _cuda_device_id(device)}), CPU]
        if device != "auto":
            self._notice(
                f"ONNX Runtime offers no CUDA provider here (install onnxruntime-gpu for {device!r}); using the CPU"
            )
        return [CPU]

    def _notice(self, text: str) -> None:
        self.notices.append(text)
        warnings.warn(text, RuntimeWarning, stacklevel=3)

    def _options(self, threads: int | None) -> ort.SessionOptions:
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = threads
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3  # errors only: provider-assignment chatter is not for users
        return options

    def _open(self, data: bytes, device: str, threads: int | None) -> ort.InferenceSession:
        providers = self._providers(device)
        wants_cuda = providers[0] != CPU
        try:
            session = ort.InferenceSession(data, self._options(threads), providers=providers)
            self._check_graph(session)
            if wants_cuda:
                self._warm_up(session)  # CUDA libraries that fail to load often fail on the first run
        except ModelFileError:
            raise
        except Exception as exc:
            if not wants_cuda:
                raise ModelFileError(
                    f"{self.path} could not be loaded by ONNX Runtime ({exc.__class__.__name__}: {exc}); "
                    + export_hint(self.path)
                ) from exc
            self._notice(f"the CUDA provider failed ({exc.__class__.__name__}: {exc}); using the CPU")
            return self._open(data, "cpu", threads)
        if wants_cuda and session.get_providers()[0] != CUDA:
            self._notice("ONNX Runtime could not start its CUDA provider (see its log); using the CPU")
        return session

    def _check_graph(self, session: ort.InferenceSession) -> None:
        inputs = tuple(i.name for i in session.get_inputs())
        outputs = tuple(o.name for o in session.get_outputs())
        if set(inputs) != set(self._inputs) or set(outputs) != set(self._outputs):
            raise ModelFileError(
                f"{self.path} is not a {self.kind} step graph (inputs {inputs}, outputs {outputs}); "
                + export_hint(self.path)
            )

    def _warm_up(self, session: ort.InferenceSession) -> None:
        feed = {"x": np.zeros((1, 3), np.float32), **self.initial_state(1)}
        if self.synthesis:
            feed["text"] = self._text(np.zeros((1, 1), np.int64))
        session.run(list(self._outputs), feed)

    # ----- state -------------------------------------------------------------------------------------------
    def initial_state(self, batch: int) -> dict[str, np.ndarray]:
        H, L = int(self.config["hidden"]), int(self.config["layers"])
        state = {"h": np.zeros((L, batch, H), np.float32), "c": np.zeros((L, batch, H), np.float32)}
        if self.synthesis:
            state["kappa"] = np.zeros((batch, int(self.config["window"])), np.float32)
            state["w"] = np.zeros((batch, int(self.config["alphabet_size"])), np.float32)
        return state

    def _text(self, chars: np.ndarray) -> np.ndarray:
        return one_hot_text(chars, int(self.config["alphabet_size"]))

    def _run(self, x: np.ndarray, text: np.ndarray | None, state: dict[str, np.ndarray]):
        # The outputs come back in self._outputs' order: y, (phi,) then the state in self._state_keys' order.
        feed = {"x": np.ascontiguousarray(x, np.float32), **state}
        if self.synthesis:
            feed["text"] = text
        out = self.session.run(self._output_names, feed)
        if self.synthesis:
            return out[0], out[1], dict(zip(self._state_keys, out[2:], strict=True))
        return out[0], None, dict(zip(self._state_keys, out[1:], strict=True))

    # ----- the Stepper protocol ------------------------------------------------------------------------------
    def prime(self, inputs: np.ndarray, chars: np.ndarray):
        """Run the step graph over a priming sequence (batch 1); ``inputs`` are the steps before the last."""
        seq = np.concatenate([np.zeros((1, 3), np.float32), np.asarray(inputs, np.float32).reshape(-1, 3)])
        ch = self._text(np.asarray(chars, np.int64).reshape(1, -1)) if self.synthesis else None
        state = self.initial_state(1)
        for x_t in seq:
            _, _, state = self._run(x_t[None], ch, state)
        return state

    def start(self, chars: np.ndarray, primed=None):
        """The batch's state: its text one-hot (made once here, not at every step) and the network's state."""
        text = self._text(chars) if self.synthesis else None
        B = np.shape(chars)[0]
        if primed is None:
            return text, self.initial_state(B)
        # h and c are (layers, batch, H); window arrays are (batch, ...). Copies: the primed state is reused.
        state = {k: np.ascontiguousarray(np.repeat(v, B, axis=1 if k in ("h", "c") else 0)) for k, v in primed.items()}
        return text, state

    def step(self, x: np.ndarray, state):
        text, st = state
        y, phi, st = self._run(x, text, st)
        return y, phi, (text, st)

    def carried(self, state):
        """The network's state without the batch's text (as :meth:`prime` returns it)."""
        return state[1]

    def select(self, state, rows: np.ndarray):
        """Keep only batch rows ``rows`` (finished lines leave the batch)."""
        text, st = state
        kept = {k: np.ascontiguousarray(v[:, rows] if k in ("h", "c") else v[rows]) for k, v in st.items()}
        return (np.ascontiguousarray(text[rows]) if text is not None else None), kept

    def row_state(self, state, row: int) -> dict[str, np.ndarray]:
        """A copy of batch row ``row``'s network state (a line taken back to it later: ``sampling.stream``)."""
        return {k: (v[:, row] if k in ("h", "c") else v[row]).copy() for k, v in state[1].items()}

    def set_row_state(self, state, row: int, saved: dict[str, np.ndarray]):
        """``state`` with row ``row``'s network state put back to ``saved`` (the arrays are the loop's own)."""
        for k, v in saved.items():
            if k in ("h", "c"):
                state[1][k][:, row] = v
            else:
                state[1][k][row] = v
        return state
