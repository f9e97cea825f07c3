"""float64 references and the error measure used by every accuracy test."""

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


def rel_err(out, ref) -> float:
    out, ref = np.asarray(out, np.float64), np.asarray(ref, np.float64)
    assert out.shape == ref.shape, (out.shape, ref.shape)
    return float(np.linalg.norm(out - ref) / max(np.linalg.norm(ref), 1e-300))
