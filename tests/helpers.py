"""float64 references, the error measure and the error budget used by every accuracy test."""

import threading

import numpy as np


def make_inputs(rng, batch, k, n, bias=True):
    """x ~ N(0, 1); weight and bias uniform in +-1/sqrt(K), as nn.Linear initializes them (float64)."""
    bound = 1 / np.sqrt(k) if k else 1.0
    x = rng.standard_normal(tuple(batch) + (k,))
    w = rng.uniform(-bound, bound, (n, k))
    b = rng.uniform(-bound, bound, n) if bias else None
    return x, w, b


def linear_sigmoid_sum(x, w, b, keepdims=True):
    z = np.asarray(x, np.float64) @ np.asarray(w, np.float64).T
    if b is not None:
        z = z + np.asarray(b, np.float64)
    with np.errstate(over="ignore"):
        return (1 / (1 + np.exp(-z))).sum(-1, keepdims=keepdims)


def sigmoid_sum(z, b, keepdims=True):
    z = np.asarray(z, np.float64) + (0 if b is None else np.asarray(b, np.float64))
    with np.errstate(over="ignore"):
        return (1 / (1 + np.exp(-z))).sum(-1, keepdims=keepdims)


def in_threads(work, count: int = 4) -> list:
    """Run work() in count threads at once; the exceptions they raised."""
    failures = []

    def guarded():
        try:
            work()
        except Exception as exc:  # noqa: BLE001 - returned to the test
            failures.append(exc)

    threads = [threading.Thread(target=guarded) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return failures


def rel_err(out, ref) -> float:
    out, ref = np.asarray(out, np.float64), np.asarray(ref, np.float64)
    assert out.shape == ref.shape, (out.shape, ref.shape)
    return float(np.linalg.norm(out - ref) / max(np.linalg.norm(ref), 1e-300))


# --------------------------------------------------------------------------------------------------------- host

# err(NumPy backend, float64) <= HOST_TOLERANCE[dtype]: the output's rounding (half an ulp) and fp32 sums only
HOST_TOLERANCE = {"float64": 1e-12, "float32": 1e-6, "float16": 1e-3}


# ---------------------------------------------------------------------------------------------------------- GPU

# err(ours, float64) <= 2 * err(torch at the same dtype and precision, float64) + EPS[dtype]
GPU_EPS = {"float64": 1e-13, "float32": 1e-6, "float16": 1e-3, "bfloat16": 4e-3}


def torch_expression(x, w, b):
    """The expression we replace, as torch computes it under torch's current settings."""
    import torch

    return torch.sum(torch.sigmoid(torch.nn.functional.linear(x, w, b)), dim=-1, keepdim=True)


def torch_inputs(rng, batch, k, n, dtype, bias=True, device="cpu"):
    """make_inputs as torch tensors ((x, w, b), then grad_out of shape batch + (1,) drawn after them)."""
    import torch

    x, w, b = (
        None if a is None else torch.from_numpy(a).to(device, dtype) for a in make_inputs(rng, batch, k, n, bias)
    )
    g = torch.from_numpy(rng.standard_normal(tuple(batch) + (1,))).to(device, dtype)
    return (x, w, b), g


def grads(fn, tensors, grad_out):
    """Gradients of sum(grad_out * fn(*tensors)) with respect to every tensor that is not None."""
    leaves = [None if t is None else t.detach().clone().requires_grad_(True) for t in tensors]
    (fn(*leaves) * grad_out).sum().backward()
    return [None if t is None else t.grad for t in leaves]


def torch_linear(x, w, b, precision=None):
    """torch's z = x @ W.T + b at a precision: TF32 matmuls for "tf32", bfloat16 operands for "bf16", strict
    otherwise (torch's flags are put back as they were)."""
    import torch

    old = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
    try:
        if precision == "bf16":  # torch's peer for bf16-rounded operands: the same products in bfloat16
            x, w, b = (None if t is None else t.bfloat16() for t in (x, w, b))
        return torch.nn.functional.linear(x, w, b)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old


def torch_model(x, w, b, precision=None):
    """torch's result at a precision (see torch_linear)."""
    import torch

    out = torch.sum(torch.sigmoid(torch_linear(x, w, b, precision)), dim=-1, keepdim=True)
    return out.float() if precision == "bf16" else out


def cuda_inputs(rng, batch, k, n, dtype, bias=True):
    import torch

    return [None if a is None else torch.from_numpy(a).to("cuda", dtype) for a in make_inputs(rng, batch, k, n, bias)]


def exact_reference(x, w, b):
    return linear_sigmoid_sum(*(None if t is None else t.double().resolve_neg().cpu().numpy() for t in (x, w, b)))


def budget(x, w, b, precision, ref):
    """Twice torch's own error at the same precision (strict fp32 for the fp32-accurate ones), plus EPS."""
    peer = "ieee" if precision in (None, "tf32x3") else precision
    dtype = str(x.dtype).removeprefix("torch.")
    return 2 * rel_err(torch_model(x, w, b, peer).double().cpu().numpy(), ref) + GPU_EPS[dtype]
