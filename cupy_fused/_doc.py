"""Parameter documentation, written once and placed into the docstrings of the public functions and layers
(``{name}`` fields filled by ``fill``), so that the faces cannot drift apart. Each entry is one or more
``name: text`` paragraphs, placed as Google-style ``Args:`` items (rendered by Sphinx's napoleon: docs/api.md)."""

from __future__ import annotations

import textwrap

PARAMS = {
    "operands": """x: (..., K). All operands are numpy arrays, cupy arrays, torch tensors (subclasses such as
        numpy.memmap or nn.Parameter included), JAX arrays or arrays of another DLPack / Array-API library: one
        library, one device, one floating dtype (float32, float64, float16; bfloat16 for torch). Inputs are never
        modified.

        weight: (N, K).

        bias: (N,) or None.""",
    "tensors": """x: (..., K), a torch tensor (CPU or CUDA); weight and bias on its device, of its floating dtype
        (float32, float64, float16 or bfloat16).

        weight: (N, K).

        bias: (N,) or None.""",
    "precision": """precision: how float32 products are computed on the GPU. None (the default): the fastest
        fp32-accurate way for the shape, "ieee" (exact fp32, CUDA cores: small batches) or "tf32x3" (three TF32
        tensor-core products, error within 2x of strict fp32's); "ieee" strict fp32; "tf32x3"; "tf32" one TF32
        product (~3e-4 relative error on z); "bf16" operands rounded to bfloat16. A request may be served more
        accurately than asked (at small batches every float32 precision runs exact fp32, which is as fast there).
        Half inputs accumulate in float32, float64 in float64; the NumPy backend is always strict.""",
    "method": """method: "auto" (the planner's choice: ``plan(...).explain()`` shows it), "fused" (our kernels only:
        one launch, no (B, N) intermediate, bit-identical results) or "cublas" (cuBLASLt into a bounded workspace,
        then our reduction).""",
    "keepdims": """keepdims: result of shape (..., 1) when True (the default), (...) when False.""",
    "stream": """stream: None runs on the arrays' library's current stream (torch.cuda.current_stream(),
        CuPy's current stream); a stream of that same library (torch.cuda.Stream, cupy.cuda.Stream) runs there and
        allocates there. A stream of another library is refused.""",
    "workspace_bytes": """workspace_bytes: bound on the block of z of the two-pass method (which uses at most 64 MiB)
        and the (B, chunk of N) block of the NumPy backend, and on the split copy of x some fused kernels make
        (default 256 MiB).""",
    "save_bytes": """save_bytes: the budget for saving sigmoid'(z) in x's dtype in a training call (None:
        workspace_bytes, and for float16 / bfloat16 inputs any size, which is the memory torch autograd keeps of
        sigmoid's output; 0: always recompute in the backward).""",
}


def fill(text: str) -> str:
    """``text`` with each ``{name}`` (written at an indent of eight spaces, under ``Args:``) replaced by the shared
    paragraphs of that name, each wrapped at 116 columns with its continuation lines indented four more spaces."""

    def entries(value: str) -> str:
        paragraphs = [" ".join(p.split()) for p in value.split("\n\n")]
        wrapped = [textwrap.fill(p, 108, subsequent_indent=" " * 12, break_on_hyphens=False) for p in paragraphs]
        return ("\n" + " " * 8).join(wrapped)

    return text.format(**{k: entries(v) for k, v in PARAMS.items()})
