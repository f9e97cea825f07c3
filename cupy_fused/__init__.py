"""cupy_fused: out = sum_j sigmoid(x @ W.T + b), on NumPy, CuPy and torch arrays. Imports neither torch nor cupy."""

from .layer import LinearSigmoidSum
from .ops import linear_sigmoid_sum, sigmoid_sum

__version__ = "0.1.0"
__all__ = ["linear_sigmoid_sum", "sigmoid_sum", "LinearSigmoidSum", "__version__"]
