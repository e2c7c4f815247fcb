// pool.cu: max pooling, forward (recording the argmax) and backward.
//
// Forward, for every output pixel (n, c, oh, ow), over the size x size window whose top-left
// corner is (oh*stride - pad, ow*stride - pad) in x's coordinates:
//     y[n, c, oh, ow] = max over window of x_padded[n, c, ...]
// Padding counts as -infinity, so it never wins unless the whole window is padding. On ties the
// FIRST maximum in row-major window order (smallest (i, j) offset) wins: we only replace the
// current best on a strictly larger value. The winner's position inside the input plane,
// h*W + w, is stored in `argmax` (-1 if the window is all padding).
// Output size: OH = (H + 2*pad - size)/stride + 1, OW likewise (computed on the host).
#include "common.cuh"

// One thread per output element (N*C*OH*OW threads).
template <typename T>
__device__ void max_pool_forward_impl(const T* __restrict__ x, T* __restrict__ y,
                                      int* __restrict__ argmax,
                                      int N, int C, int H, int W, int size, int stride, int pad,
                                      int OH, int OW) {
    const int total = N * C * OH * OW;
    const int flat = global_thread_index();
    if (flat >= total) return;

    // y is (N, C, OH, OW) row-major: flat = ((n*C + c)*OH + oh)*OW + ow. We only need the plane
    // index nc = n*C + c (which (image, channel) plane) and (oh, ow) inside it.
    const int ow = flat % OW;
    const int oh = (flat / OW) % OH;
    const int nc = flat / (OW * OH);
    const T* plane = x + nc * H * W;             // the H x W plane of image n, channel c

    const int h_start = oh * stride - pad;       // top-left corner of the window
    const int w_start = ow * stride - pad;
    T best = neg_inf(T(0));
    int best_index = -1;
    for (int i = 0; i < size; ++i) {             // window rows, top to bottom
        const int h = h_start + i;
        if (h < 0 || h >= H) continue;           // padding row: -inf, never the maximum
        for (int j = 0; j < size; ++j) {         // window columns, left to right
            const int w = w_start + j;
            if (w < 0 || w >= W) continue;
            const T value = plane[h * W + w];
            if (value > best || best_index < 0) {   // strictly larger: the first maximum stays
                best = value;
                best_index = h * W + w;
            }
        }
    }
    y[flat] = best;
    argmax[flat] = best_index;
}

// Backward in GATHER form: one thread per INPUT element (n, c, h, w) adds the upstream gradient
// of every output window whose argmax is this pixel. No atomics: each thread writes only dx[flat].
//
// Which windows contain row h? Window oh covers rows oh*stride - pad .. oh*stride - pad + size-1,
// so it contains h when  oh*stride <= h + pad <= oh*stride + size - 1, i.e.
//     (h + pad - size + 1)/stride <= oh <= (h + pad)/stride,
// rounded up on the left and down on the right, and clipped to 0..OH-1. Columns likewise.
template <typename T>
__device__ void max_pool_backward_impl(const T* __restrict__ dy, const int* __restrict__ argmax,
                                       T* __restrict__ dx,
                                       int N, int C, int H, int W, int size, int stride, int pad,
                                       int OH, int OW) {
    const int total = N * C * H * W;
    const int flat = global_thread_index();
    if (flat >= total) return;

    // dx is (N, C, H, W) row-major: flat = (nc*H + h)*W + w with nc = n*C + c.
    const int w = flat % W;
    const int h = (flat / W) % H;
    const int nc = flat / (W * H);
    const int my_index = h * W + w;              // what argmax holds when this pixel won

    // First and last window that can contain (h, w). (a + stride - 1)/stride rounds a
    // non-negative a up; a negative numerator means window 0 already qualifies.
    const int h_low = h + pad - size + 1;
    const int w_low = w + pad - size + 1;
    const int oh_first = h_low > 0 ? (h_low + stride - 1) / stride : 0;
    const int ow_first = w_low > 0 ? (w_low + stride - 1) / stride : 0;
    const int oh_last = min_int((h + pad) / stride, OH - 1);
    const int ow_last = min_int((w + pad) / stride, OW - 1);

    const T* dy_plane = dy + nc * OH * OW;       // gradients of this (n, c) plane
    const int* argmax_plane = argmax + nc * OH * OW;
    T sum = T(0);
    for (int oh = oh_first; oh <= oh_last; ++oh) {
        for (int ow = ow_first; ow <= ow_last; ++ow) {
            if (argmax_plane[oh * OW + ow] == my_index) sum += dy_plane[oh * OW + ow];
        }
    }
    dx[flat] = sum;
}

// ---- entry points ---------------------------------------------------------------------------
extern "C" __global__ void max_pool_forward_f32(const float* x, float* y, int* argmax,
                                                int N, int C, int H, int W, int size, int stride,
                                                int pad, int OH, int OW) {
    max_pool_forward_impl<float>(x, y, argmax, N, C, H, W, size, stride, pad, OH, OW);
}
extern "C" __global__ void max_pool_forward_f64(const double* x, double* y, int* argmax,
                                                int N, int C, int H, int W, int size, int stride,
                                                int pad, int OH, int OW) {
    max_pool_forward_impl<double>(x, y, argmax, N, C, H, W, size, stride, pad, OH, OW);
}
extern "C" __global__ void max_pool_backward_f32(const float* dy, const int* argmax, float* dx,
                                                 int N, int C, int H, int W, int size, int stride,
                                                 int pad, int OH, int OW) {
    max_pool_backward_impl<float>(dy, argmax, dx, N, C, H, W, size, stride, pad, OH, OW);
}
extern "C" __global__ void max_pool_backward_f64(const double* dy, const int* argmax, double* dx,
                                                 int N, int C, int H, int W, int size, int stride,
                                                 int pad, int OH, int OW) {
    max_pool_backward_impl<double>(dy, argmax, dx, N, C, H, W, size, stride, pad, OH, OW);
}
