#include "fused_linear_sigmoid_sum.cu"
template __global__ void fls::fls_wgmma_ws<fls::WS_TF32X3, 128, 3, true>(const float*, long long, const float*, long long, const float*, float*, float*, int, int, int, int);
