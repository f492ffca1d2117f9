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


def _check_arrays(obj, where: str = "") -> None:
    """Refuse arrays of Python objects anywhere in the loaded structure."""
    if isinstance(obj, np.ndarray) and obj.dtype.hasobject:
        raise RefusedPickle(f"it holds an array of Python objects{f' at {where}' if where else ''}")
    if isinstance(obj, dict):
        for k, v in obj.items():
            _check_arrays(v, f"{where}[{k!r}]")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _check_arrays(v, f"{where}[{i}]")


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
