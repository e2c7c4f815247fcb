// im2col.cu: unfold image patches into columns (im2col) and fold them back (col2im).
//
// A convolution becomes one matrix product: with the patches of x laid out as the columns of
//     cols   shape (C*KH*KW, N*OH*OW)
// the layer computes  y = W.reshape(F, C*KH*KW) @ cols.
//
// Row and column of cols:
//     row = (c*KH + i)*KW + j          c: input channel, (i, j): offset inside the kernel window
//     col = (n*OH + oh)*OW + ow        n: image, (oh, ow): output pixel
//     cols[row, col] = x_padded[n, c, oh*stride + i, ow*stride + j]
// where x_padded is x with `pad` zeros on every side, so in x's own coordinates the pixel read is
//     h = oh*stride + i - pad,   w = ow*stride + j - pad   (zero if outside 0..H-1 / 0..W-1).
// Output size: OH = (H + 2*pad - KH)/stride + 1, OW likewise (the host computes them).
#include "common.cuh"

// One thread per element of cols (C*KH*KW * N*OH*OW threads).
template <typename T>
__device__ void im2col_impl(const T* __restrict__ x, T* __restrict__ cols,
                            int N, int C, int H, int W, int KH, int KW,
                            int stride, int pad, int OH, int OW) {
    const int num_cols = N * OH * OW;            // length of one row of cols
    const int total = C * KH * KW * num_cols;    // number of elements of cols
    const int flat = global_thread_index();
    if (flat >= total) return;                   // the last block may run past the end

    // cols is row-major: flat = row * num_cols + col.
    const int row = flat / num_cols;
    const int col = flat % num_cols;

    // row = (c*KH + i)*KW + j  ->  j is the remainder by KW, then i by KH, then c.
    const int j = row % KW;
    const int i = (row / KW) % KH;
    const int c = row / (KW * KH);

    // col = (n*OH + oh)*OW + ow  ->  ow is the remainder by OW, then oh by OH, then n.
    const int ow = col % OW;
    const int oh = (col / OW) % OH;
    const int n = col / (OW * OH);

    // The input pixel this entry copies, in unpadded coordinates.
    const int h = oh * stride + i - pad;
    const int w = ow * stride + j - pad;

    T value = T(0);                              // padding reads as zero
    if (h >= 0 && h < H && w >= 0 && w < W) {
        // x is (N, C, H, W) row-major: offset = ((n*C + c)*H + h)*W + w.
        value = x[((n * C + c) * H + h) * W + w];
    }
    cols[flat] = value;
}

// col2im, the adjoint of im2col: every entry of cols is added back into the input pixel it was
// read from (entries read from padding are dropped). GATHER form: one thread per input element
// (N*C*H*W threads) loops over the kernel offsets (i, j) and adds up the cols entries that read
// this pixel. Each thread writes only its own output, so no atomic additions are needed and the
// result does not depend on the order in which threads run.
template <typename T>
__device__ void col2im_impl(const T* __restrict__ cols, T* __restrict__ dx,
                            int N, int C, int H, int W, int KH, int KW,
                            int stride, int pad, int OH, int OW) {
    const int total = N * C * H * W;
    const int flat = global_thread_index();
    if (flat >= total) return;

    // dx is (N, C, H, W) row-major: flat = ((n*C + c)*H + h)*W + w.
    const int w = flat % W;
    const int h = (flat / W) % H;
    const int c = (flat / (W * H)) % C;
    const int n = flat / (W * H * C);

    const int num_cols = N * OH * OW;
    T sum = T(0);
    for (int i = 0; i < KH; ++i) {
        // This pixel is read at kernel row i by output row oh when oh*stride + i - pad == h,
        // i.e. oh = (h + pad - i) / stride, which must be a whole number inside 0..OH-1.
        const int h_shifted = h + pad - i;
        if (h_shifted < 0 || h_shifted % stride != 0) continue;
        const int oh = h_shifted / stride;
        if (oh >= OH) continue;
        for (int j = 0; j < KW; ++j) {
            // The same for columns: ow = (w + pad - j) / stride.
            const int w_shifted = w + pad - j;
            if (w_shifted < 0 || w_shifted % stride != 0) continue;
            const int ow = w_shifted / stride;
            if (ow >= OW) continue;
            const int row = (c * KH + i) * KW + j;
            const int col = (n * OH + oh) * OW + ow;
            sum += cols[row * num_cols + col];
        }
    }
    dx[flat] = sum;
}

// ---- entry points: one per dtype, with plain C names that CuPy and ctypes can look up -------
extern "C" __global__ void im2col_f32(const float* x, float* cols, int N, int C, int H, int W,
                                      int KH, int KW, int stride, int pad, int OH, int OW) {
    im2col_impl<float>(x, cols, N, C, H, W, KH, KW, stride, pad, OH, OW);
}
extern "C" __global__ void im2col_f64(const double* x, double* cols, int N, int C, int H, int W,
                                      int KH, int KW, int stride, int pad, int OH, int OW) {
    im2col_impl<double>(x, cols, N, C, H, W, KH, KW, stride, pad, OH, OW);
}
extern "C" __global__ void col2im_f32(const float* cols, float* dx, int N, int C, int H, int W,
                                      int KH, int KW, int stride, int pad, int OH, int OW) {
    col2im_impl<float>(cols, dx, N, C, H, W, KH, KW, stride, pad, OH, OW);
}
extern "C" __global__ void col2im_f64(const double* cols, double* dx, int N, int C, int H, int W,
                                      int KH, int KW, int stride, int pad, int OH, int OW) {
    col2im_impl<double>(cols, dx, N, C, H, W, KH, KW, stride, pad, OH, OW);
}
