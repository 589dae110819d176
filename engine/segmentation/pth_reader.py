"""Read a PyTorch `.pth` state dict into numpy without torch, and without running arbitrary pickle code.

The ONNX runtime path and the installer must read the published checkpoints on machines without torch.
A `.pth` is a pickle of tensor *metadata* whose storages are stored beside it: either the zip format
(`<name>/data.pkl` plus one raw file per storage under `<name>/data/`) or the legacy stream format
(magic number, protocol, system info, the object pickle, a pickled list of storage keys, then each
storage as an int64 element count followed by its raw bytes). The published ESPNetv2 checkpoints are
legacy files with CUDA storages.

Only a whitelist of pickle globals is honoured: `collections.OrderedDict`, the two tensor rebuild
functions (mapped to strided numpy views) and the typed storage classes (mapped to numpy dtypes);
any other global raises `SegmentationModelError`. Arrays are read-only views into the file's bytes.
"""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.segmentation.errors import SegmentationModelError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
STORAGE_DTYPES = {
    "FloatStorage": "<f4",
    "DoubleStorage": "<f8",
    "HalfStorage": "<f2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}


@dataclass(frozen=True, slots=True)  # slots: a pickle BUILD cannot rewrite fields
class _StorageType:
    dtype: np.dtype


@dataclass(frozen=True, slots=True)  # slots: a pickle BUILD cannot rewrite fields
class _StorageRef:
    key: str
    dtype: np.dtype
    numel: int


@dataclass(frozen=True, slots=True)  # slots: a pickle BUILD cannot rewrite fields
class _TensorRef:
    storage: _StorageRef
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(storage, offset, shape, stride, requires_grad=False, hooks=None, metadata=None) -> _TensorRef:
    if not isinstance(storage, _StorageRef):
        raise pickle.UnpicklingError("a tensor is rebuilt from something that is not a storage")
    return _TensorRef(storage, int(offset), tuple(int(s) for s in shape), tuple(int(s) for s in stride))


def _rebuild_parameter(data, requires_grad=False, hooks=None) -> _TensorRef:
    return data


_FUNCTIONS = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Honours only whitelisted globals; collects the storages the tensors refer to."""

    def __init__(self, file: io.BufferedIOBase) -> None:
        super().__init__(file)
        self.storages: dict[str, _StorageRef] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _FUNCTIONS:
            return _FUNCTIONS[(module, name)]
        if module in ("torch", "torch.cuda") and name in STORAGE_DTYPES:
            return _StorageType(np.dtype(STORAGE_DTYPES[name]))
        raise pickle.UnpicklingError(f"refusing pickle global {module}.{name} (not a plain tensor state dict)")

    def persistent_load(self, pid: Any) -> _StorageRef:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r:.80}")
        _, storage_type, key, _location, numel = pid[:5]
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"storage {key} has unknown type {storage_type!r:.80}")
        if len(pid) > 5 and pid[5] is not None:
            raise pickle.UnpicklingError("legacy storage views are not supported")
        if int(numel) < 0:
            raise pickle.UnpicklingError(f"storage {key} has a negative size")
        ref = _StorageRef(str(key), storage_type.dtype, int(numel))
        return self.storages.setdefault(ref.key, ref)


def _view(ref: _TensorRef, buffers: Mapping[str, np.ndarray]) -> np.ndarray:
    """The tensor as a read-only strided numpy view of its storage, bounds-checked."""
    storage = buffers[ref.storage.key]
    if any(d < 0 for d in ref.shape) or any(s < 0 for s in ref.stride) or len(ref.shape) != len(ref.stride):
        raise SegmentationModelError(f"tensor with bad shape {ref.shape} / stride {ref.stride}")
    last = ref.offset + sum((d - 1) * s for d, s in zip(ref.shape, ref.stride, strict=True) if d > 0)
    if ref.offset < 0 or (0 not in ref.shape and last >= storage.size):
        raise SegmentationModelError(f"tensor {ref.shape} at offset {ref.offset} overruns its storage")
    item = storage.itemsize
    base = storage[ref.offset :] if 0 not in ref.shape else storage[:0]
    return np.lib.stride_tricks.as_strided(base, ref.shape, tuple(s * item for s in ref.stride), writeable=False)


def _materialise(obj: Any, buffers: Mapping[str, np.ndarray]) -> Any:
    if isinstance(obj, _TensorRef):
        return _view(obj, buffers)
    if isinstance(obj, OrderedDict):
        return OrderedDict((k, _materialise(v, buffers)) for k, v in obj.items())
    if isinstance(obj, dict):
        return {k: _materialise(v, buffers) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_materialise(v, buffers) for v in obj)
    return obj


def _storage_array(ref: _StorageRef, raw: bytes | memoryview) -> np.ndarray:
    need = ref.numel * ref.dtype.itemsize
    if len(raw) < need:
        raise SegmentationModelError(f"storage {ref.key} is truncated ({len(raw)} of {need} bytes)")
    return np.frombuffer(raw, ref.dtype, count=ref.numel)


def _read_zip(data: bytes) -> Any:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pickles) != 1:
            raise SegmentationModelError(f"zip checkpoint holds {len(pickles)} data.pkl records, expected 1")
        prefix = pickles[0][: -len("data.pkl")]
        names = set(archive.namelist())
        if prefix + "byteorder" in names and archive.read(prefix + "byteorder").decode().strip() != "little":
            raise SegmentationModelError("big-endian checkpoints are not supported")
        unpickler = _RestrictedUnpickler(io.BytesIO(archive.read(pickles[0])))
        obj = unpickler.load()
        buffers = {
            key: _storage_array(ref, archive.read(f"{prefix}data/{key}")) for key, ref in unpickler.storages.items()
        }
    return _materialise(obj, buffers)


def _read_legacy(data: bytes) -> Any:
    stream = io.BytesIO(data)
    if _RestrictedUnpickler(stream).load() != LEGACY_MAGIC:
        raise SegmentationModelError("not a PyTorch checkpoint (bad magic number)")
    if _RestrictedUnpickler(stream).load() != LEGACY_PROTOCOL:
        raise SegmentationModelError("unsupported legacy PyTorch protocol version")
    sys_info = _RestrictedUnpickler(stream).load()
    if not isinstance(sys_info, dict) or not sys_info.get("little_endian", False):
        raise SegmentationModelError("big-endian or unrecognised legacy checkpoint")
    unpickler = _RestrictedUnpickler(stream)
    obj = unpickler.load()
    keys = _RestrictedUnpickler(stream).load()
    if not isinstance(keys, list) or set(keys) != set(unpickler.storages):
        raise SegmentationModelError("legacy checkpoint's storage list does not match its tensors")
    view = memoryview(data)
    position = stream.tell()
    buffers: dict[str, np.ndarray] = {}
    for key in keys:
        ref = unpickler.storages[key]
        if position + 8 > len(data):
            raise SegmentationModelError(f"storage {key} is truncated")
        (numel,) = struct.unpack_from("<q", data, position)
        if numel != ref.numel:
            raise SegmentationModelError(f"storage {key} holds {numel} elements, its tensors expect {ref.numel}")
        position += 8
        size = numel * ref.dtype.itemsize
        buffers[key] = _storage_array(ref, view[position : position + size])
        position += size
    return _materialise(obj, buffers)


def read_pth(path: str | Path) -> Any:
    """The object saved in a `.pth` (zip or legacy format), with every tensor as a read-only numpy array."""
    path = Path(path)
    if not path.is_file():
        raise SegmentationModelError(f"checkpoint {path} does not exist")
    data = path.read_bytes()
    try:
        return _read_zip(data) if zipfile.is_zipfile(io.BytesIO(data)) else _read_legacy(data)
    except SegmentationModelError as exc:
        raise SegmentationModelError(f"{path}: {exc}") from exc
    except Exception as exc:  # pickle, zip, struct and key errors all mean a file we cannot trust
        raise SegmentationModelError(
            f"{path} is not a readable PyTorch checkpoint ({exc.__class__.__name__}: {exc})"
        ) from exc


def unwrap_state_dict(obj: Any, source: str = "checkpoint") -> dict[str, Any]:
    """A flat name -> tensor mapping: unwraps {'state_dict': ...}/{'model': ...} and strips a `module.` prefix."""
    for wrapper in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, Mapping) and isinstance(obj.get(wrapper), Mapping):
            obj = obj[wrapper]
            break
    if not isinstance(obj, Mapping) or not all(isinstance(k, str) for k in obj):
        raise SegmentationModelError(f"{source} is not a state dict (found {type(obj).__name__})")
    if obj and all(k.startswith("module.") for k in obj):  # saved from nn.DataParallel
        return OrderedDict((k[len("module.") :], v) for k, v in obj.items())
    return OrderedDict(obj)


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """A checkpoint's state dict as numpy arrays, without torch."""
    return unwrap_state_dict(read_pth(path), str(path))
