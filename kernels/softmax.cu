// softmax.cu: softmax cross-entropy, forward (per-row loss) and backward (dlogits).
//
// For logits z of shape (N, C) and integer labels t (N,):
//     loss[n]   = logsumexp(z[n, :]) - z[n, t[n]]
//     logsumexp = m + log(sum_c exp(z[n, c] - m)),   m = max_c z[n, c]
// Subtracting the row maximum m keeps every exp() argument <= 0, so nothing overflows.
// The batch loss is the mean of loss[n] (taken on the host). Its gradient is
//     dlogits[n, c] = (softmax(z[n])[c] - [c == t[n]]) / N,  softmax = exp(z - logsumexp).
#include "common.cuh"

// One thread per row n (N threads): the row's logsumexp and loss. A row of AlexNet has 1000
// logits, so a thread loops over them twice (max, then sum of exponentials).
template <typename T>
__device__ void softmax_xent_rows_impl(const T* __restrict__ logits, const int* __restrict__ labels,
                                       T* __restrict__ row_loss, T* __restrict__ row_lse,
                                       int N, int C) {
    const int n = global_thread_index();
    if (n >= N) return;
    const T* z = logits + n * C;                   // logits is (N, C) row-major: row n

    T m = z[0];
    for (int c = 1; c < C; ++c) m = z[c] > m ? z[c] : m;
    T sum_exp = T(0);
    for (int c = 0; c < C; ++c) sum_exp += exp_t(z[c] - m);
    const T lse = m + log_t(sum_exp);

    row_lse[n] = lse;
    row_loss[n] = lse - z[labels[n]];
}

// One thread per logit (N*C threads): dlogits = (softmax - onehot) / N.
template <typename T>
__device__ void softmax_xent_grad_impl(const T* __restrict__ logits, const int* __restrict__ labels,
                                       const T* __restrict__ row_lse, T* __restrict__ dlogits,
                                       int N, int C) {
    const int flat = global_thread_index();
    if (flat >= N * C) return;
    // flat = n*C + c
    const int c = flat % C;
    const int n = flat / C;
    const T probability = exp_t(logits[flat] - row_lse[n]);
    const T onehot = c == labels[n] ? T(1) : T(0);
    dlogits[flat] = (probability - onehot) / T(N);
}

// ---- entry points ---------------------------------------------------------------------------
extern "C" __global__ void softmax_xent_rows_f32(const float* logits, const int* labels,
                                                 float* row_loss, float* row_lse, int N, int C) {
    softmax_xent_rows_impl<float>(logits, labels, row_loss, row_lse, N, C);
}
extern "C" __global__ void softmax_xent_rows_f64(const double* logits, const int* labels,
                                                 double* row_loss, double* row_lse, int N, int C) {
    softmax_xent_rows_impl<double>(logits, labels, row_loss, row_lse, N, C);
}
extern "C" __global__ void softmax_xent_grad_f32(const float* logits, const int* labels,
                                                 const float* row_lse, float* dlogits,
                                                 int N, int C) {
    softmax_xent_grad_impl<float>(logits, labels, row_lse, dlogits, N, C);
}
extern "C" __global__ void softmax_xent_grad_f64(const double* logits, const int* labels,
                                                 const double* row_lse, double* dlogits,
                                                 int N, int C) {
    softmax_xent_grad_impl<double>(logits, labels, row_lse, dlogits, N, C);
}
