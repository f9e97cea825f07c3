"""KernelBench level 2, problem 56 (Matmul_Sigmoid_Sum): the reference ``Model`` and ``ModelNew``, its drop-in
replacement built on ``cupy_fused.torch.LinearSigmoidSum``, plus a correctness check run the way KernelBench runs
it: build Model from get_init_inputs(), load its state_dict into ModelNew, then five trials on fresh torch.rand
inputs compared with torch.allclose(atol=1e-4, rtol=1e-4).

    python examples/kernelbench_56.py [--device cuda|cpu] [--small] [--trials 5] [--seed 42]

``--small`` runs input_size = hidden_size = 1024 (the full problem holds a 4 GiB weight), for a quick CPU check.
Exits 0 when every trial passes, 1 otherwise.
"""

import argparse
import sys

import torch
import torch.nn as nn

try:
    from cupy_fused.torch import LinearSigmoidSum
except ImportError:  # run from a checkout without installing: python examples/kernelbench_56.py
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from cupy_fused.torch import LinearSigmoidSum

batch_size = 128
input_size = 32768
hidden_size = 32768

SMALL = {"batch_size": 128, "input_size": 1024, "hidden_size": 1024}
ATOL = RTOL = 1e-4


class Model(nn.Module):
    """Simple model that performs a matrix multiplication, applies sigmoid, and sums the result."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.linear = nn.Linear(input_size, hidden_size)

    def forward(self, x):
        """
        Args:
            x: Input tensor of shape (batch_size, input_size).

        Returns:
            Output tensor of shape (batch_size, 1).
        """
        x = self.linear(x)  # (batch_size, hidden_size)
        x = torch.sigmoid(x)  # (batch_size, hidden_size)
        x = torch.sum(x, dim=1, keepdim=True)  # (batch_size, 1)
        return x


class ModelNew(nn.Module):
    """Model with the linear, sigmoid and sum done by cupy_fused (cuBLAS + one reduction kernel on the GPU, the
    NumPy backend on the CPU; differentiable). ``self.linear`` has nn.Linear's parameters, so Model's state_dict
    loads into it."""

    def __init__(self, input_size, hidden_size, precision=None):
        super().__init__()
        self.linear = LinearSigmoidSum(input_size, hidden_size, precision=precision)

    def forward(self, x):
        return self.linear(x)  # (batch_size, 1); Model sums over dim=1 of a 2-d input, the last axis


def get_inputs(batch_size=None, input_size=None, device="cpu"):
    batch_size = globals()["batch_size"] if batch_size is None else batch_size
    input_size = globals()["input_size"] if input_size is None else input_size
    return [torch.rand(batch_size, input_size, device=device)]


def get_init_inputs(input_size=None, hidden_size=None):
    input_size = globals()["input_size"] if input_size is None else input_size
    hidden_size = globals()["hidden_size"] if hidden_size is None else hidden_size
    return [input_size, hidden_size]


def check(
    batch_size=batch_size,
    input_size=input_size,
    hidden_size=hidden_size,
    device="cuda",
    trials=5,
    seed=42,
    atol=ATOL,
    rtol=RTOL,
    out=print,
) -> bool:
    """KernelBench's correctness check of ModelNew against Model; returns whether every trial passed."""
    torch.manual_seed(seed)
    init_inputs = get_init_inputs(input_size, hidden_size)
    model = Model(*init_inputs).to(device)
    model_new = ModelNew(*init_inputs).to(device)
    model_new.load_state_dict(model.state_dict())
    passed = 0
    with torch.no_grad():
        for trial in range(trials):
            torch.manual_seed(seed + 1 + trial)
            inputs = get_inputs(batch_size, input_size, device)
            expected = model(*inputs)
            got = model_new(*inputs)
            if got.shape != expected.shape:
                out(f"trial {trial}: FAIL, shape {tuple(got.shape)} != {tuple(expected.shape)}")
                continue
            ok = torch.allclose(got, expected, atol=atol, rtol=rtol)
            diff = (got - expected).abs().max().item()
            out(f"trial {trial}: {'pass' if ok else 'FAIL'} (max abs diff {diff:.3g})")
            passed += ok
    out(
        f"{'PASS' if passed == trials else 'FAIL'}: {passed}/{trials} trials within atol={atol}, rtol={rtol} "
        f"(batch {batch_size}, input {input_size}, hidden {hidden_size}, {device})"
    )
    return passed == trials


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="KernelBench level 2 problem 56: ModelNew against Model")
    parser.add_argument(
        "--device", choices=["cuda", "cpu"], default=None, help="default: cuda when available, else cpu"
    )
    parser.add_argument("--small", action="store_true", help=f"small sizes {SMALL} (quick on a CPU)")
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    sizes = SMALL if args.small else {"batch_size": batch_size, "input_size": input_size, "hidden_size": hidden_size}
    return 0 if check(**sizes, device=device, trials=args.trials, seed=args.seed) else 1


if __name__ == "__main__":
    sys.exit(main())
