"""jax.Array, on the CPU or a CUDA device: the DLPack bridge (arrays/dlpack.py) with JAX's own name and one rule.

JAX has no current stream to borrow: CUDA operands are handed over through DLPack on CuPy's current stream (JAX
orders that stream after the work that produced them) and the result comes back as a jax.Array the same way. Values
traced by ``jax.jit`` have no data yet: they are refused with a message that says what to do instead.
"""

from __future__ import annotations

import jax

from .dlpack import DLPackBridge

TRACED_HELP = (
    "call cupy_fused outside jax.jit, or inside it through jax.pure_callback (the README's JAX section has the "
    "recipe; the callback runs on host data)"
)


class JaxBridge(DLPackBridge):
    @staticmethod
    def library(a) -> str:
        return "jax"

    @staticmethod
    def key(a) -> tuple:
        if isinstance(a, jax.core.Tracer):
            raise TypeError  # the caller validates to get the message
        return (type(a), a.shape, a.dtype, a.__dlpack_device__())

    def describe(self, name: str, a):
        if isinstance(a, jax.core.Tracer):
            raise TypeError(
                f"{name} is a traced JAX value (inside jax.jit, grad or vmap), which holds no data: {TRACED_HELP}"
            )
        return super().describe(name, a)


ADAPTER = JaxBridge()
