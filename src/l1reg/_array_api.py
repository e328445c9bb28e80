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
    "array_library",
    "common_library",
    "flatten_arrays",
    "is_array",
]


# The library of each array type seen so far (None for a type that is no array). An array's type
# determines its library, and a type object exists only once its library is loaded, so the cache
# imports nothing; it turns the half-dozen predicates per leaf into one dict lookup, which matters
# for a list of hundreds of parameters.
_LIBRARY_OF_TYPE: dict[type, str | None] = {}


def _library_of(x: object) -> str | None:
    cls = type(x)
    try:
        return _LIBRARY_OF_TYPE[cls]
    except KeyError:
        pass
    if not array_api_compat.is_array_api_obj(x):
        library = None
    elif array_api_compat.is_numpy_array(x):
        library = "numpy"
    elif array_api_compat.is_torch_array(x):
        library = "torch"
    elif array_api_compat.is_jax_array(x):
        library = "jax"
    elif array_api_compat.is_cupy_array(x):
        library = "cupy"
    elif array_api_compat.is_dask_array(x):
        library = "dask"
    else:
        library = cls.__module__.partition(".")[0]
    _LIBRARY_OF_TYPE[cls] = library
    return library


def is_array(x: object) -> bool:
    """True for an array of any array-API library (NumPy scalars included), else False."""
    return _library_of(x) is not None


def array_library(x: object) -> str:
    """The name of the library that owns array ``x``: 'numpy', 'torch', 'jax', ..."""
    library = _library_of(x)
    if library is None:
        raise TypeError(f"{type(x).__name__} is not an array")
    return library


def _children(node: object) -> Iterator[tuple[object, object]] | None:
    """The (key, child) pairs of a container, or None when ``node`` is a leaf."""
    if isinstance(node, Mapping):
        return iter(node.items())
    if isinstance(node, (list, tuple, Iterator)):  # Iterator: e.g. torch's module.parameters()
        return enumerate(node)
    if "jax" in sys.modules and not isinstance(node, (str, bytes)) and node is not None:
        # A registered pytree node (a flax FrozenDict, an equinox Module, ...): let JAX open it.
        import jax

        leaves = jax.tree_util.tree_leaves(node)
        if len(leaves) != 1 or leaves[0] is not node:
            return ((_PytreeLeaf(i), value) for i, value in enumerate(leaves))
    return None


class _PytreeLeaf(int):
    """The key of the i-th leaf of a pytree node, shown as ``.leafI`` in a path."""

    def __repr__(self) -> str:
        return f"leaf{int(self)}"


def _collect(node: object, keys: list[object], arrays: list[Any], name: str, owner: str) -> None:
    if _library_of(node) is not None:
        arrays.append(node)
        return
    children = _children(node)
    if children is None:
        # Paths are spelled only here, on error: building them for every leaf costs more than
        # the rest of the walk.
        path = name + "".join(
            f".{key!r}" if isinstance(key, _PytreeLeaf) else f"[{key!r}]" for key in keys
        )
        hint = ""
        if callable(getattr(node, "parameters", None)):
            hint = " (for a model, pass model.parameters() or use l1reg.torch.L1Regularizer)"
        expected = "an array, or a list, tuple or dict of arrays" + hint
        raise TypeError(invalid_parameter(path, owner, expected, node))
    for key, child in children:
        keys.append(key)
        _collect(child, keys, arrays, name, owner)
        keys.pop()


def flatten_arrays(weights: object, name: str, owner: str) -> list[Any]:
    """Every array in ``weights``: an array, or nested lists, tuples, dicts, iterators, pytrees.

    Raises ``TypeError`` naming the path of the first leaf that is not an array.
    """
    arrays: list[Any] = []
    _collect(weights, [], arrays, name, owner)
    return arrays


def common_library(arrays: list[Any], name: str, owner: str) -> str | None:
    """The one library that owns every array (None for none); mixed libraries raise ValueError."""
    libraries = sorted({_library_of(x) for x in arrays})
    if len(libraries) > 1:
        raise ValueError(
            f"The {name!r} parameter of {owner} mixes arrays of several libraries: "
            f"{', '.join(libraries)}. Convert them to one library first."
        )
    return libraries[0] if libraries else None
