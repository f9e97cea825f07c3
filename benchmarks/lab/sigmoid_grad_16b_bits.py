"""bw::sigmoid_grad's 16-byte layout for half operands against main's (issue 27): the gradients of training steps
(float16 and bfloat16, s' saved and recomputed; float32 saved as a check that its instances did not move), at shapes
whose rows are 16-byte aligned or not and in one chunk or several, dumped bit for bit per tree, then compared. Each
case runs twice per tree, so a GEMM that is not repeatable shows as such, not as a change of sigmoid_grad.

    CUPY_FUSED_TUNE=0 PYTHONPATH=<tree> python3 benchmarks/lab/sigmoid_grad_16b_bits.py dump OUT.npz [DTYPE ...]
    python3 benchmarks/lab/sigmoid_grad_16b_bits.py compare BEFORE.npz AFTER.npz
    PYTHONPATH=<tree> python3 benchmarks/lab/sigmoid_grad_16b_bits.py step B K N  (one bf16 step, for ncu)
"""

import sys

import numpy as np
import torch

# (dtype, B, K, N, workspace_bytes, save_bytes, expanded grad_out). N = 1027: the saved s' rows (stride N) unaligned,
# and in one chunk gz's too (stride 1028, a multiple of 4, not 8); the small workspaces: several chunks (widths a
# multiple of 8: 16-byte aligned gz rows), the last one cut inside a lane's 8 columns (235 of 1027 at B = 300)
CASES = [
    (dtype, b, k, n, ws, save, expand)
    for dtype in ("float16", "bfloat16")
    for (b, k, n, ws) in ((300, 64, 1027, 2**28), (300, 64, 1027, 2**18), (257, 96, 2048, 2**28), (130, 32, 600, 2**17))
    for save in (2**30, 0)
    for expand in (False, True)
] + [("float32", 300, 64, 1027, 2**28, 2**30, False), ("float32", 130, 32, 600, 2**17, 2**30, False)]


def run(dtype, b, k, n, ws, save, expand):
    import cupy_fused.torch as cft

    gen = torch.Generator(device="cuda").manual_seed(b * 7 + n)
    dt = getattr(torch, dtype)
    x = torch.randn(b, k, device="cuda", generator=gen).to(dt).requires_grad_()
    w = (torch.randn(n, k, device="cuda", generator=gen) / k**0.5).to(dt).requires_grad_()
    bias = torch.randn(n, device="cuda", generator=gen).to(dt).requires_grad_()
    g = torch.rand(1 if expand else b, 1, device="cuda", generator=gen).to(dt).expand(b, 1)
    out = cft.linear_sigmoid_sum(x, w, bias, workspace_bytes=ws, save_bytes=save)
    grads = torch.autograd.grad(out, (x, w, bias), g)
    return [t.detach().float().cpu().numpy() for t in (out, *grads)]


def dump(path, dtypes=None):
    arrays = {}
    for case in [c for c in CASES if dtypes is None or c[0] in dtypes]:
        name = "_".join(map(str, case))
        first, second = run(*case), run(*case)
        for label, a, a2 in zip(("out", "gx", "gw", "gb"), first, second):
            arrays[f"{name}:{label}"] = a.view(np.uint32)
            if not np.array_equal(a.view(np.uint32), a2.view(np.uint32)):
                print(f"not repeatable within the tree: {name} {label}")
    np.savez(path, **arrays)
    print(f"{len(arrays) // 4} cases dumped to {path}")


def compare(before, after):
    a, b = np.load(before), np.load(after)
    differ = 0
    for key in a.files:
        same = key in b.files and np.array_equal(a[key], b[key])
        if not same:
            differ += 1
            n = int((a[key] != b[key]).sum()) if key in b.files and a[key].shape == b[key].shape else -1
            print(f"DIFFERENT {key}: {n} of {a[key].size} values")
    print(f"{len(a.files) - differ} of {len(a.files)} arrays bit-identical")
    return 1 if differ else 0


def step(b, k, n):
    import cupy_fused.torch as cft

    x = torch.randn(b, k, device="cuda", dtype=torch.bfloat16).requires_grad_()
    w = (torch.randn(n, k, device="cuda") / k**0.5).to(torch.bfloat16).requires_grad_()
    bias = torch.randn(n, device="cuda", dtype=torch.bfloat16).requires_grad_()
    g = torch.rand(b, 1, device="cuda", dtype=torch.bfloat16)
    torch.autograd.grad(cft.linear_sigmoid_sum(x, w, bias), (x, w, bias), g)
    torch.cuda.synchronize()
    print(f"one bf16 step at {b} x {k} x {n}")


if __name__ == "__main__":
    if sys.argv[1] == "dump":
        dump(sys.argv[2], sys.argv[3:] or None)
    elif sys.argv[1] == "compare":
        sys.exit(compare(sys.argv[2], sys.argv[3]))
    else:
        step(*map(int, sys.argv[2:5]))
