"""Train a small model whose head is cupy_fused's layer, beside a twin built from nn.Linear, on the same data.

The task: fit y = sum_j sigmoid(x @ A.T + c)[j] for a hidden teacher (A, c), from x through a learned 2-layer
model: Linear(d_in, d_hidden) -> tanh -> head, the head being cupy_fused.torch.LinearSigmoidSum or its torch twin
(nn.Linear followed by sigmoid and a sum). Both start from the same weights and see the same batches; the script
prints both loss curves side by side and the time per training step of each.

    python examples/train.py [--device cuda|cpu] [--small] [--steps 300]

``--small`` runs a CPU-sized problem in a few seconds.
"""

import argparse
import sys
import time

import torch
from torch import nn

try:
    from cupy_fused.torch import LinearSigmoidSum
except ImportError:  # run from a checkout without installing
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from cupy_fused.torch import LinearSigmoidSum


class TorchHead(nn.Module):
    def __init__(self, d_in, d_out):
        super().__init__()
        self.linear = nn.Linear(d_in, d_out)

    def forward(self, x):
        return torch.sigmoid(self.linear(x)).sum(-1, keepdim=True)


def model(head, d_in, d_hidden, device):
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.Tanh(), head).to(device)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--small", action="store_true", help="a CPU-sized problem (seconds)")
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args(argv)
    d_in, d_hidden, d_out, batch = (32, 64, 96, 64) if args.small else (256, 1024, 512, 512)
    device = torch.device(args.device)
    torch.manual_seed(0)
    teacher = nn.Linear(d_in, d_out).to(device)
    ours = model(LinearSigmoidSum(d_hidden, d_out), d_in, d_hidden, device)
    twin = model(TorchHead(d_hidden, d_out), d_in, d_hidden, device)
    twin[0].load_state_dict(ours[0].state_dict())
    twin[2].linear.load_state_dict(ours[2].state_dict())
    optimizers = [torch.optim.Adam(m.parameters(), lr=1e-3) for m in (ours, twin)]
    losses, seconds = ([], []), [0.0, 0.0]
    for step in range(args.steps):
        x = torch.randn(batch, d_in, device=device)
        with torch.no_grad():
            y = torch.sigmoid(teacher(x)).sum(-1, keepdim=True)
        for i, (m, opt) in enumerate(zip((ours, twin), optimizers)):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            opt.zero_grad()
            loss = nn.functional.mse_loss(m(x), y)
            loss.backward()
            opt.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if step >= 5:  # after warm-up (plans, kernels, allocator)
                seconds[i] += time.perf_counter() - start
            losses[i].append(loss.item())
    print(f"{'step':>6} {'cupy_fused loss':>16} {'nn.Linear loss':>16}")
    for step in sorted(set(range(0, args.steps, max(1, args.steps // 10))) | {args.steps - 1}):
        print(f"{step:6d} {losses[0][step]:16.6f} {losses[1][step]:16.6f}")
    timed = max(1, args.steps - 5)
    print(
        f"time per step on {device}: cupy_fused {seconds[0] / timed * 1e3:.3f} ms, nn.Linear twin "
        f"{seconds[1] / timed * 1e3:.3f} ms"
    )
    ok = losses[0][-1] < 0.5 * losses[0][0] and abs(losses[0][-1] - losses[1][-1]) <= 0.2 * losses[1][0]
    print("both models learned, and alike" if ok else "FAIL: the curves differ or did not fall")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
