"""Reading pickles from strangers without running their code.

A pickle is a small program: it may name any importable function and call it (os.system included),
and a plain pickle.load or paddle.load runs it. Checkpoints (.pdparams, .pdopt), evaluator weights
and the CIFAR-10 batches are pickles that people download, so paddle_gan reads them with a
restricted unpickler that resolves only what those files need: NumPy arrays and their dtypes
(as paddle.save and NumPy write them), OrderedDict, and the latin-1 codec that Python's own
protocol-2 pickles use for bytes. Anything else stops the load before it is called, and an array
of Python objects is refused too. Containers, numbers and strings need no lookup at all.

What this does not cover: `paddle.load` of the same files elsewhere is still a plain unpickler.
"""
from __future__ import annotations

import io
import pickle

import numpy as np

_ALLOWED = {
    ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "_reconstruct"),  # NumPy 2 / 1
    ("numpy._core.multiarray", "scalar"), ("numpy.core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("collections", "OrderedDict"),
    ("_codecs", "encode"),  # how a protocol-2 pickle written by Python 3 spells bytes
}


class RefusedPickle(pickle.UnpicklingError):
    """The file asks for something a data file never needs; nothing of it was run."""


class _Restricted(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise RefusedPickle(f"it asks for {module}.{name}, which a checkpoint or dataset never needs "
                            f"(a file from elsewhere may try to run code that way); nothing of it was run")

    def persistent_load(self, pid):
        raise RefusedPickle("it uses persistent references, which a checkpoint or dataset never needs")


MAX_DEPTH = 32  # nesting of containers: a state dict needs 2 (paddle.save's name map inside the dict)
MAX_NODES = 10_000_000  # distinct containers and values: far beyond any state dict or dataset batch


def _check_arrays(obj) -> None:
    """Refuse arrays of Python objects anywhere in the loaded structure. Each distinct object is
    visited once (a pickle's memo can make a few hundred bytes a structure of 2^60 paths through
    shared references, l = [l, l] sixty times), iteratively, with the depth and the number of
    objects bounded: the walk costs at most what the file's own size allowed the unpickler to build."""
    seen: set[int] = set()
    todo = [(obj, 0, "")]
    while todo:
        item, depth, where = todo.pop()
        if isinstance(item, np.ndarray):
            if item.dtype.hasobject:
                raise RefusedPickle(f"it holds an array of Python objects{f' at {where}' if where else ''}")
            continue
        if not isinstance(item, (dict, list, tuple)) or id(item) in seen:
            continue
        seen.add(id(item))
        if depth >= MAX_DEPTH:
            raise RefusedPickle(f"it nests containers deeper than {MAX_DEPTH} levels, which a checkpoint or dataset "
                                f"never does")
        if len(seen) > MAX_NODES:
            raise RefusedPickle(f"it holds more than {MAX_NODES} containers, which a checkpoint or dataset never does")
        children = item.items() if isinstance(item, dict) else enumerate(item)
        todo.extend((v, depth + 1, f"{where}[{k!r}]"[:200]) for k, v in children)


def loads(data: bytes, encoding: str = "ASCII"):
    """The object pickled in `data`, resolving only the names above. Raises RefusedPickle for
    anything else, and pickle/EOF/value errors for a damaged file."""
    obj = _Restricted(io.BytesIO(data), encoding=encoding).load()
    _check_arrays(obj)
    return obj


def load_state_dict(data: bytes) -> dict:
    """A state dict as paddle.save writes it ({name: array or number}), with NumPy arrays for values;
    Layer.set_state_dict and Optimizer.set_state_dict take these as they are."""
    obj = loads(data)
    if not isinstance(obj, dict):
        raise RefusedPickle(f"it holds a {type(obj).__name__}, not a state dict")
    return obj
