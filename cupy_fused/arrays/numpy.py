"""numpy.ndarray (and its subclasses, numpy.memmap among them): host data for the NumPy backend."""

from __future__ import annotations

import numpy as np

from . import Operand


class NumpyAdapter:
    library = "numpy"
    bridge = False

    @staticmethod
    def key(a) -> tuple:
        return (type(a), a.shape, a.strides, a.dtype)

    @staticmethod
    def describe(name: str, a) -> Operand:
        if isinstance(a, np.ma.MaskedArray):
            raise TypeError(f"{name} is a numpy masked array; its mask would be ignored: pass {name}.filled(...)")
        item = a.dtype.itemsize or 1
        strides = tuple(s // item for s in a.strides)
        return Operand(name, "numpy", tuple(a.shape), a.dtype.name, "cpu", strides, True)

    @staticmethod
    def host_view(a) -> np.ndarray:
        return a.view(np.ndarray) if type(a) is not np.ndarray else a

    @staticmethod
    def empty_fn(dtype: str, device):
        np_dtype = np.dtype(dtype)

        def empty(shape):
            return np.empty(shape, np_dtype)

        return empty


ADAPTER = NumpyAdapter()
