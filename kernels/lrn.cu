// lrn.cu: local response normalization across channels (AlexNet paper, section 3.3).
//
// At every image n and pixel (y, x), with a = the input and C channels:
//     s[c] = k + alpha * sum_{j in window(c)} a[j]^2
//     b[c] = a[c] * s[c]^(-beta)
// window(c) = c - size/2 .. c + (size-1)/2 (integer division), clipped to 0..C-1. For the
// paper's size = 5 that is c-2 .. c+2. alpha is NOT divided by size (PyTorch and Caffe do).
//
// Backward. b[j] depends on a[c] through its own a[j] (when j == c) and through s[j] whenever
// c lies in window(j):  d b[j] / d a[c] = [j == c] s[j]^(-beta)
//                                        - 2 alpha beta a[j] a[c] s[j]^(-beta-1) [c in window(j)].
// Summing dy[j] * that over j:
//     dx[c] = dy[c] s[c]^(-beta) - 2 alpha beta a[c] * sum_{j : c in window(j)} dy[j] a[j] s[j]^(-beta-1)
// and since b[j] = a[j] s[j]^(-beta), the summand is dy[j] * b[j] / s[j] (no extra pow).
// c in window(j) means j - size/2 <= c <= j + (size-1)/2, i.e. j runs over
//     c - (size-1)/2 .. c + size/2    (clipped to 0..C-1): the window mirrored.
//
// Memory layout (N, C, H, W): neighbouring channels of one pixel are H*W elements apart.
#include "common.cuh"

// One thread per output element (N*C*H*W threads). Also stores s for the backward pass.
template <typename T>
__device__ void lrn_forward_impl(const T* __restrict__ x, T* __restrict__ y, T* __restrict__ scale,
                                 int N, int C, int H, int W, int size, T alpha, T beta, T k) {
    const int total = N * C * H * W;
    const int flat = global_thread_index();
    if (flat >= total) return;

    // flat = ((n*C + c)*H + h)*W + w = (n*C + c)*HW + p with p = h*W + w the pixel in its plane.
    const int HW = H * W;
    const int p = flat % HW;
    const int c = (flat / HW) % C;
    const int n = flat / (HW * C);
    const T* column = x + n * C * HW + p;         // column[j * HW] = x[n, j, h, w]

    const int j_first = max_int(c - size / 2, 0);
    const int j_last = min_int(c + (size - 1) / 2, C - 1);
    T sum_sq = T(0);
    for (int j = j_first; j <= j_last; ++j) {
        const T a = column[j * HW];
        sum_sq += a * a;
    }
    const T s = k + alpha * sum_sq;
    scale[flat] = s;
    y[flat] = x[flat] * pow_t(s, -beta);
}

// One thread per input element: dx[c] from the formula at the top of the file.
template <typename T>
__device__ void lrn_backward_impl(const T* __restrict__ dy, const T* __restrict__ x,
                                  const T* __restrict__ y, const T* __restrict__ scale,
                                  T* __restrict__ dx,
                                  int N, int C, int H, int W, int size, T alpha, T beta) {
    const int total = N * C * H * W;
    const int flat = global_thread_index();
    if (flat >= total) return;

    // Same decomposition as the forward pass.
    const int HW = H * W;
    const int p = flat % HW;
    const int c = (flat / HW) % C;
    const int n = flat / (HW * C);
    const int base = n * C * HW + p;              // offset of (n, channel 0, h, w)

    // The channels j whose window contains c: c - (size-1)/2 .. c + size/2.
    const int j_first = max_int(c - (size - 1) / 2, 0);
    const int j_last = min_int(c + size / 2, C - 1);
    T cross = T(0);                               // sum of dy[j] * b[j] / s[j]
    for (int j = j_first; j <= j_last; ++j) {
        const int at = base + j * HW;
        cross += dy[at] * y[at] / scale[at];
    }
    dx[flat] = dy[flat] * pow_t(scale[flat], -beta) - T(2) * alpha * beta * x[flat] * cross;
}

// ---- entry points ---------------------------------------------------------------------------
extern "C" __global__ void lrn_forward_f32(const float* x, float* y, float* scale,
                                           int N, int C, int H, int W, int size,
                                           float alpha, float beta, float k) {
    lrn_forward_impl<float>(x, y, scale, N, C, H, W, size, alpha, beta, k);
}
extern "C" __global__ void lrn_forward_f64(const double* x, double* y, double* scale,
                                           int N, int C, int H, int W, int size,
                                           double alpha, double beta, double k) {
    lrn_forward_impl<double>(x, y, scale, N, C, H, W, size, alpha, beta, k);
}
extern "C" __global__ void lrn_backward_f32(const float* dy, const float* x, const float* y,
                                            const float* scale, float* dx,
                                            int N, int C, int H, int W, int size,
                                            float alpha, float beta) {
    lrn_backward_impl<float>(dy, x, y, scale, dx, N, C, H, W, size, alpha, beta);
}
extern "C" __global__ void lrn_backward_f64(const double* dy, const double* x, const double* y,
                                            const double* scale, double* dx,
                                            int N, int C, int H, int W, int size,
                                            double alpha, double beta) {
    lrn_backward_impl<double>(dy, x, y, scale, dx, N, C, H, W, size, alpha, beta);
}
