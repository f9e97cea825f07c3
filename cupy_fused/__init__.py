"""cupy_fused: out = sum_j sigmoid(x @ W.T + b), on NumPy, CuPy and torch arrays. Imports neither torch nor cupy."""

from .api import Plan, clear_plans, linear_sigmoid_sum, plan, sigmoid_sum
from .checks import OutOfDeviceMemory
from .layer import LinearSigmoidSum

#: The package version (also in CHANGELOG.md).
__version__ = "0.2.0"
__all__ = [
    "linear_sigmoid_sum",
    "sigmoid_sum",
    "plan",
    "Plan",
    "clear_plans",
    "LinearSigmoidSum",
    "OutOfDeviceMemory",
    "__version__",
]
