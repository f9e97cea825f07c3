"""Train a small model whose head is cupy_fused's layer, beside a twin built from nn.Linear, on the same data.

The task: fit y = sum_j sigmoid(x @ A.T + c)[j] for a hidden teacher (A, c), from x through a learned 2-layer
model: Linear(d_in, d_hidden) -> tanh -> head, the head being cupy_fused.torch.LinearSigmoidSum or its torch twin
(nn.Linear followed by sigmoid and a sum). Both start from the same weights, hold them in ``--dtype`` (float32 or
bfloat16), see the same batches and take Adam steps whose learning rate decays along a cosine to a tenth; the
script prints both loss curves side by side (the mean loss over each tenth of the run) and the time per training
step of each.

    python examples/train.py [--device cuda|cpu] [--dtype float32|bfloat16] [--small] [--steps 300]

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
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args(argv)
    d_in, d_hidden, d_out, batch = (32, 64, 96, 64) if args.small else (256, 1024, 512, 512)
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    torch.manual_seed(0)
    teacher = nn.Linear(d_in, d_out).to(device)
    ours = model(LinearSigmoidSum(d_hidden, d_out), d_in, d_hidden, device).to(dtype)
    twin = model(TorchHead(d_hidden, d_out), d_in, d_hidden, device).to(dtype)
    twin[0].load_state_dict(ours[0].state_dict())
    twin[2].linear.load_state_dict(ours[2].state_dict())
    optimizers = [torch.optim.Adam(m.parameters(), lr=1e-3) for m in (ours, twin)]
    # Without the decay both curves fall, then climb back (H100, 200 steps: 0.25 at step 100, 0.52 at step 199).
    schedules = [torch.optim.lr_scheduler.CosineAnnealingLR(o, args.steps, eta_min=1e-4) for o in optimizers]
    losses, seconds = ([], []), [0.0, 0.0]
    for step in range(args.steps):
        x = torch.randn(batch, d_in, device=device)
        with torch.no_grad():
            y = torch.sigmoid(teacher(x)).sum(-1, keepdim=True)
        x = x.to(dtype)
        for i, (m, opt, schedule) in enumerate(zip((ours, twin), optimizers, schedules)):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            opt.zero_grad()
            loss = nn.functional.mse_loss(m(x).float(), y)
            loss.backward()
            opt.step()
            schedule.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if step >= 5:  # after warm-up (plans, kernels, allocator)
                seconds[i] += time.perf_counter() - start
            losses[i].append(loss.item())
    window = max(1, args.steps // 10)
    means = [[sum(c[s : s + window]) / len(c[s : s + window]) for s in range(0, args.steps, window)] for c in losses]
    print(f"{'steps':>11} {'cupy_fused loss':>16} {'nn.Linear loss':>16}   ({args.dtype}, mean over the steps)")
    for j, s in enumerate(range(0, args.steps, window)):
        print(f"{s:5d}-{min(s + window, args.steps) - 1:<5d} {means[0][j]:16.6f} {means[1][j]:16.6f}")
    timed = max(1, args.steps - 5)
    print(
        f"time per step on {device}: cupy_fused {seconds[0] / timed * 1e3:.3f} ms, nn.Linear twin "
        f"{seconds[1] / timed * 1e3:.3f} ms"
    )
    ours_curve, twin_curve = means
    ok = ours_curve[-1] < 0.5 * ours_curve[0] and abs(ours_curve[-1] - twin_curve[-1]) <= 0.2 * twin_curve[0]
    print("both models learned, and alike" if ok else "FAIL: the curves differ or did not fall")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
