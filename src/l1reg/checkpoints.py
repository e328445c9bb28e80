"""Reading the weights of a saved model as named NumPy arrays, for ``l1reg inspect``.

Three formats: ``.npz`` (NumPy), ``.safetensors`` and a PyTorch ``state_dict`` saved by
``torch.save`` (any other extension). safetensors files are read here directly, since the format is
a JSON header and raw little-endian bytes and ``safetensors.numpy`` cannot hold bfloat16; bfloat16
values are widened to float32 exactly. A PyTorch file needs torch, loaded with
``weights_only=True``; its floating-point tensors that NumPy cannot hold (bfloat16, the float8
types) are widened to float32, exactly too.

Whatever the format, a checkpoint must hold at least one tensor, and every tensor must hold numbers
(booleans, integers, real or complex floats): a file that holds none, or an array of text, dates or
records (which ``.npz`` can store), is a :class:`CheckpointError` naming the file and the tensor,
not a report of zero tensors or a failure in the middle of one.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from pathlib import Path

import numpy as np

__all__ = ["CheckpointError", "load_checkpoint"]


class CheckpointError(ValueError):
    """A checkpoint that cannot be read; the message is one line naming the file."""


_SAFETENSORS_DTYPES = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U64": "<u8",
    "U32": "<u4",
    "U16": "<u2",
    "U8": "u1",
    "BOOL": "?",
}


def load_checkpoint(path: str | Path) -> dict[str, np.ndarray]:
    """The named arrays in checkpoint ``path``, in file order. Raises :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"cannot read checkpoint {str(path)!r}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                arrays = {name: archive[name] for name in archive.files}
        elif suffix == ".safetensors":
            arrays = _load_safetensors(path)
        else:
            arrays = _load_torch(path)
    except CheckpointError:
        raise
    except Exception as error:  # any failure of a reader means the file is not what it claims
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(f"cannot read checkpoint {str(path)!r}: {reason}") from error
    _check_tensors(path, arrays)
    return arrays


# NumPy's kinds of numbers: bool, signed and unsigned integers, floats, complex floats.
_NUMBER_KINDS = "biufc"
_KIND_NAMES = {"U": "text", "S": "bytes", "M": "dates", "m": "time spans", "V": "records"}


def _check_tensors(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Refuse a checkpoint without tensors, or with a tensor that does not hold numbers."""
    if not arrays:
        raise CheckpointError(f"cannot read checkpoint {str(path)!r}: it holds no tensor")
    for name, values in arrays.items():
        kind = values.dtype.kind
        if kind not in _NUMBER_KINDS:
            what = _KIND_NAMES.get(kind, "values")
            raise CheckpointError(
                f"cannot read checkpoint {str(path)!r}: tensor {name!r} holds {what} "
                f"(dtype {values.dtype}), not numbers"
            )


def _load_safetensors(path: Path) -> dict[str, np.ndarray]:
    data = path.read_bytes()
    if len(data) < 8:
        raise CheckpointError(f"cannot read checkpoint {str(path)!r}: not a safetensors file")
    (header_size,) = struct.unpack("<Q", data[:8])
    if header_size > len(data) - 8:
        raise CheckpointError(f"cannot read checkpoint {str(path)!r}: truncated safetensors header")
    header = json.loads(data[8 : 8 + header_size])
    body = memoryview(data)[8 + header_size :]
    arrays = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        shape = tuple(entry["shape"])
        raw = np.frombuffer(body[begin:end], dtype=np.uint8)
        if entry["dtype"] == "BF16":
            # bfloat16 is the top half of a float32: shift it into place, exactly.
            values = (raw.view("<u2").astype(np.uint32) << 16).view(np.float32)
        elif entry["dtype"] in _SAFETENSORS_DTYPES:
            values = raw.view(_SAFETENSORS_DTYPES[entry["dtype"]])
        else:
            raise CheckpointError(
                f"cannot read checkpoint {str(path)!r}: tensor {name!r} has dtype "
                f"{entry['dtype']}, which l1reg does not read"
            )
        arrays[name] = values.reshape(shape)
    return arrays


def _load_torch(path: Path) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError:
        raise CheckpointError(
            f"cannot read checkpoint {str(path)!r}: a PyTorch checkpoint needs torch "
            "(pip install 'l1reg[torch]'); .npz and .safetensors files do not"
        ) from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch's own messages say little ('pop from empty list')
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(
            f"cannot read checkpoint {str(path)!r}: not a PyTorch checkpoint, nor .npz or "
            f".safetensors ({reason})"
        ) from error
    arrays: dict[str, np.ndarray] = {}
    _collect_tensors(torch, path, state, "", arrays)
    return arrays


def _collect_tensors(
    torch, path: Path, node: object, prefix: str, arrays: dict[str, np.ndarray]
) -> None:
    """Tensors of a state_dict, nested ones too ({'model': ..., 'optimizer': ...}), dotted names."""
    if isinstance(node, torch.Tensor):
        name = prefix or "tensor"
        tensor = node.detach()
        # NumPy has no bfloat16 nor float8; float32 holds every value of them exactly.
        numpy_floats = (torch.float16, torch.float32, torch.float64)
        if tensor.is_floating_point() and tensor.dtype not in numpy_floats:
            tensor = tensor.float()
        try:
            arrays[name] = tensor.numpy()
        except (TypeError, RuntimeError):  # a quantized or sparse tensor has no NumPy view
            layout = "" if tensor.layout == torch.strided else f" and layout {tensor.layout}"
            raise CheckpointError(
                f"cannot read checkpoint {str(path)!r}: tensor {name!r} has dtype "
                f"{tensor.dtype}{layout}, which l1reg does not read"
            ) from None
    elif isinstance(node, Mapping):
        for key, value in node.items():
            _collect_tensors(torch, path, value, f"{prefix}.{key}" if prefix else str(key), arrays)
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            _collect_tensors(torch, path, value, f"{prefix}.{i}" if prefix else str(i), arrays)
