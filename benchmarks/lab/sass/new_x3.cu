#include "fused_wgmma_sm90.cu"
template __global__ void fused::wgmma_tile<true, 128, 3, false>(const float*, long long, const float*, long long, const float*, unsigned char*, float*, float*, int,int,int,int,long long,int,unsigned long long);
