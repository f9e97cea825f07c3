// A kernel that only waits, for measuring (cupy_fused/tune.py): queued first on a stream, it holds the stream for
// `cycles` clock cycles while the host queues the calls to be timed, which then run back to back on the GPU, so
// that events around them measure GPU time and not the host's.
extern "C" __global__ void spin(long long cycles) {
    const long long start = clock64();
    while (clock64() - start < cycles) {
    }
}
