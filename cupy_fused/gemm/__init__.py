"""The GEMM core for Hopper (sm_90a) on the host side: its operand types (``operands``) and one executable per spec
(``kernel``: tensor maps, the persistent schedule with its stream-K and workspace, the parameter block, the launch).
The kernels are ``kernels/sm90_gemm.cu`` and its headers; the forward's candidates on it are
``cupy_fused/backends/sm90.py``."""
