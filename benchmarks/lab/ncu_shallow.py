"""One launch of ShallowGemm at M = N = argv[1] (default 32768), K = 128, for ncu (lab)."""

import sys

import cupy as cp

from cupy_fused.backends.fused import ShallowGemm

m = n = int(sys.argv[1]) if len(sys.argv) > 1 else 32768
k = 128
gt = cp.random.standard_normal((m, k), dtype=cp.float32)
x = cp.random.standard_normal((k, n), dtype=cp.float32)
c = cp.empty((m, n), cp.float32)
stream = cp.cuda.get_current_stream().ptr
ShallowGemm(m, n, k, k, n, n, 0).run(gt.data.ptr, x.data.ptr, c.data.ptr, 0, stream)
cp.cuda.Device().synchronize()
