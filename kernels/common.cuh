// common.cuh: small helpers shared by every kernel file.
//
// This header is plain CUDA C++ that compiles in three places:
//   * NVRTC, through cupy.RawModule (the loader pastes this file into each .cu source);
//   * nvcc --ptx, in the compile check of the test-suite (tests/test_kernels_compile.py);
//   * g++ on the host, with cuda_emulation.h force-included (minitorch_alexnet/cuda/emulate.py).
// So it uses no system headers: NVRTC has none, and the math functions (expf, exp, powf, pow,
// logf, log) are built into both NVRTC and the host compiler.
//
// Index convention used by every kernel: one thread handles one output element. With a
// one-dimensional launch of `blockDim.x` threads per block, the thread's position among all
// threads of the grid is
//     flat = blockIdx.x * blockDim.x + threadIdx.x
// and the host launches ceil(total / blockDim.x) blocks, so the last block may hold threads past
// the end of the array: every kernel starts with `if (flat >= total) return;`.
// Indices are 32-bit `int`; the host refuses arrays with 2^31 or more elements.
#pragma once

// The position of this thread in a one-dimensional grid (see the comment above).
__device__ __forceinline__ int global_thread_index() {
    return (int)(blockIdx.x * blockDim.x + threadIdx.x);
}

// exp, log and pow for float and for double. CUDA has expf/exp etc.; overloading them under one
// name lets a kernel written as a template over T (float or double) call `exp_t(v)`.
__device__ __forceinline__ float exp_t(float v) { return expf(v); }
__device__ __forceinline__ double exp_t(double v) { return exp(v); }
__device__ __forceinline__ float log_t(float v) { return logf(v); }
__device__ __forceinline__ double log_t(double v) { return log(v); }
__device__ __forceinline__ float pow_t(float base, float exponent) { return powf(base, exponent); }
__device__ __forceinline__ double pow_t(double base, double exponent) { return pow(base, exponent); }

// Minus infinity. NVRTC has no <cmath> and so no INFINITY macro: build +infinity from its
// IEEE-754 bit pattern (exponent bits all ones, mantissa zero) and negate it. The unused
// argument only selects float or double.
__device__ __forceinline__ float neg_inf(float) { return -__int_as_float(0x7f800000); }
__device__ __forceinline__ double neg_inf(double) { return -__longlong_as_double(0x7ff0000000000000LL); }

// The smaller / larger of two ints (CUDA's min/max exist on the device but not on the host).
__device__ __forceinline__ int min_int(int a, int b) { return a < b ? a : b; }
__device__ __forceinline__ int max_int(int a, int b) { return a > b ? a : b; }
