// elementwise.cu: ReLU, dropout mask application, and the bias of a convolution.
//
// All arrays are C-contiguous, so an element is addressed by its flat index alone; every kernel
// runs one thread per output element (see common.cuh for `flat`).
#include "common.cuh"

// ReLU forward: y = max(x, 0).
template <typename T>
__device__ void relu_forward_impl(const T* __restrict__ x, T* __restrict__ y, int total) {
    const int flat = global_thread_index();
    if (flat >= total) return;
    const T value = x[flat];
    y[flat] = value > T(0) ? value : T(0);
}

// ReLU backward: dx = dy where the input was positive, 0 elsewhere (also at x == 0).
// We keep y = relu(x) from the forward pass: y > 0 exactly where x > 0.
template <typename T>
__device__ void relu_backward_impl(const T* __restrict__ dy, const T* __restrict__ y,
                                   T* __restrict__ dx, int total) {
    const int flat = global_thread_index();
    if (flat >= total) return;
    dx[flat] = y[flat] > T(0) ? dy[flat] : T(0);
}

// Dropout (inverted): out = in * keep / (1 - p), with keep a 0/1 byte per element drawn on the
// host and `scale` = 1/(1-p) (0 when p == 1, so that everything is dropped without 0 * inf).
// The backward pass is the same operation applied to dy with the same mask, so one kernel
// serves both directions.
template <typename T>
__device__ void dropout_apply_impl(const T* __restrict__ in, const unsigned char* __restrict__ keep,
                                   T* __restrict__ out, T scale, int total) {
    const int flat = global_thread_index();
    if (flat >= total) return;
    out[flat] = keep[flat] ? in[flat] * scale : T(0);
}

// Bias add: out[n, f, s] = y[n, f, s] + b[f] for y of shape (N, F, S), where S is the product of
// the trailing dimensions (OH*OW for a convolution, 1 for a fully-connected layer).
template <typename T>
__device__ void bias_add_impl(const T* __restrict__ y, const T* __restrict__ b,
                              T* __restrict__ out, int F, int S, int total) {
    const int flat = global_thread_index();
    if (flat >= total) return;
    // flat = (n*F + f)*S + s, so f = (flat / S) % F.
    const int f = (flat / S) % F;
    out[flat] = y[flat] + b[f];
}

// Bias gradient: db[f] = sum over n and s of dy[n, f, s]. A sum is a reduction, not one output
// per thread, so it runs in two one-thread-per-output passes without atomics:
//   pass 1: partial[n, f] = sum_s dy[n, f, s]       one thread per (n, f), N*F threads
//   pass 2: db[f]         = sum_n partial[n, f]     one thread per f,      F threads
template <typename T>
__device__ void bias_grad_partial_impl(const T* __restrict__ dy, T* __restrict__ partial,
                                       int S, int total) {
    const int flat = global_thread_index();        // flat = n*F + f, the row of dy it sums
    if (flat >= total) return;
    const T* row = dy + flat * S;                  // dy[n, f, 0..S-1] are contiguous
    T sum = T(0);
    for (int s = 0; s < S; ++s) sum += row[s];
    partial[flat] = sum;
}

template <typename T>
__device__ void bias_grad_final_impl(const T* __restrict__ partial, T* __restrict__ db,
                                     int N, int F) {
    const int f = global_thread_index();           // one thread per feature f
    if (f >= F) return;
    T sum = T(0);
    for (int n = 0; n < N; ++n) sum += partial[n * F + f];   // partial is (N, F) row-major
    db[f] = sum;
}

// ---- entry points ---------------------------------------------------------------------------
extern "C" __global__ void relu_forward_f32(const float* x, float* y, int total) {
    relu_forward_impl<float>(x, y, total);
}
extern "C" __global__ void relu_forward_f64(const double* x, double* y, int total) {
    relu_forward_impl<double>(x, y, total);
}
extern "C" __global__ void relu_backward_f32(const float* dy, const float* y, float* dx, int total) {
    relu_backward_impl<float>(dy, y, dx, total);
}
extern "C" __global__ void relu_backward_f64(const double* dy, const double* y, double* dx,
                                             int total) {
    relu_backward_impl<double>(dy, y, dx, total);
}
extern "C" __global__ void dropout_apply_f32(const float* in, const unsigned char* keep, float* out,
                                             float scale, int total) {
    dropout_apply_impl<float>(in, keep, out, scale, total);
}
extern "C" __global__ void dropout_apply_f64(const double* in, const unsigned char* keep,
                                             double* out, double scale, int total) {
    dropout_apply_impl<double>(in, keep, out, scale, total);
}
extern "C" __global__ void bias_add_f32(const float* y, const float* b, float* out, int F, int S,
                                        int total) {
    bias_add_impl<float>(y, b, out, F, S, total);
}
extern "C" __global__ void bias_add_f64(const double* y, const double* b, double* out, int F, int S,
                                        int total) {
    bias_add_impl<double>(y, b, out, F, S, total);
}
extern "C" __global__ void bias_grad_partial_f32(const float* dy, float* partial, int S, int total) {
    bias_grad_partial_impl<float>(dy, partial, S, total);
}
extern "C" __global__ void bias_grad_partial_f64(const double* dy, double* partial, int S,
                                                 int total) {
    bias_grad_partial_impl<double>(dy, partial, S, total);
}
extern "C" __global__ void bias_grad_final_f32(const float* partial, float* db, int N, int F) {
    bias_grad_final_impl<float>(partial, db, N, F);
}
extern "C" __global__ void bias_grad_final_f64(const double* partial, double* db, int N, int F) {
    bias_grad_final_impl<double>(partial, db, N, F);
}
