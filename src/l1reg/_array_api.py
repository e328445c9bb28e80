"""Finding the arrays in a container and the one library they all belong to.

Nothing here imports torch, jax, cupy or dask: array-api-compat recognises their arrays by looking
in ``sys.modules``, so a library that is not loaded cannot own an array.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from typing import Any

import array_api_compat

from ._validation import invalid_parameter

__all__ = [
    "accumulation_dtype",
    "array_library",
    "common_library",
    "flatten_arrays",
    "is_array",
]


def is_array(x: object) -> bool:
    """True for an array of any array-API library (NumPy scalars included), else False."""
    return array_api_compat.is_array_api_obj(x)


def array_library(x: object) -> str:
    """The name of the library that owns array ``x``: 'numpy', 'torch', 'jax', ..."""
    if array_api_compat.is_numpy_array(x):
        return "numpy"
    if array_api_compat.is_torch_array(x):
        return "torch"
    if array_api_compat.is_jax_array(x):
        return "jax"
    if array_api_compat.is_cupy_array(x):
        return "cupy"
    if array_api_compat.is_dask_array(x):
        return "dask"
    return type(x).__module__.partition(".")[0]


def _children(node: object) -> Iterator[tuple[str, object]] | None:
    """The (key, child) pairs of a container, or None when ``node`` is a leaf."""
    if isinstance(node, Mapping):
        return ((f"[{key!r}]", value) for key, value in node.items())
    if isinstance(node, (list, tuple)):
        return ((f"[{i}]", value) for i, value in enumerate(node))
    if isinstance(node, Iterator):  # a generator such as torch's module.parameters()
        return ((f"[{i}]", value) for i, value in enumerate(node))
    if "jax" in sys.modules and not isinstance(node, (str, bytes)) and node is not None:
        # A registered pytree node (a flax FrozenDict, an equinox Module, ...): let JAX open it.
        import jax

        leaves = jax.tree_util.tree_leaves(node)
        if len(leaves) != 1 or leaves[0] is not node:
            return ((f".leaf{i}", value) for i, value in enumerate(leaves))
    return None


def flatten_arrays(weights: object, name: str, owner: str) -> list[Any]:
    """Every array in ``weights``: an array, or nested lists, tuples, dicts, iterators, pytrees.

    Raises ``TypeError`` naming the path of the first leaf that is not an array.
    """
    arrays: list[Any] = []
    stack: list[tuple[str, object]] = [(name, weights)]
    while stack:
        path, node = stack.pop()
        if is_array(node):
            arrays.append(node)
            continue
        children = _children(node)
        if children is None:
            hint = ""
            if callable(getattr(node, "parameters", None)):
                hint = " (for a model, pass model.parameters() or use l1reg.torch.L1Regularizer)"
            expected = "an array, or a list, tuple or dict of arrays" + hint
            raise TypeError(invalid_parameter(path, owner, expected, node))
        stack.extend(reversed(list((path + key, child) for key, child in children)))
    return arrays


def common_library(arrays: list[Any], name: str, owner: str) -> str | None:
    """The one library that owns every array (None for none); mixed libraries raise ValueError."""
    libraries = sorted({array_library(x) for x in arrays})
    if len(libraries) > 1:
        raise ValueError(
            f"The {name!r} parameter of {owner} mixes arrays of several libraries: "
            f"{', '.join(libraries)}. Convert them to one library first."
        )
    return libraries[0] if libraries else None


def accumulation_dtype(xp: Any, dtype: Any) -> Any:
    """The dtype in which values of ``dtype`` are summed.

    float16 and bfloat16 are summed in float32 (a bfloat16 running sum stops growing at 256);
    integers and booleans are promoted to the library's default floating dtype; float32, float64
    and complex dtypes are summed as they are.
    """
    if xp.isdtype(dtype, ("real floating", "complex floating")):
        if xp.finfo(dtype).bits < 32:
            return xp.float32
        return dtype
    return xp.asarray(0.0).dtype
