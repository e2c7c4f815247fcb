// gemm.cu: a hand-written tiled matrix product C = A @ B using shared memory.
//
// A is (M, K), B is (K, N), C is (M, N), all row-major. The default path of the package uses
// cuBLAS (cupy.matmul); this kernel exists to be read and to be benchmarked against it
// (select it with MINITORCH_GEMM=tiled or minitorch_alexnet.cuda.ops.set_gemm("tiled")).
//
// Tiling. Each block of 16 x 16 = 256 threads computes one 64 x 64 tile of C. It walks along K in
// steps of 16: at each step the block copies a 64 x 16 tile of A and a 16 x 64 tile of B from
// global memory into shared memory (fast, on-chip, shared by the block), waits for everyone
// (__syncthreads), and then every thread multiplies what it needs from the shared tiles.
// A value loaded from global memory is thus reused by 64 threads instead of read 64 times.
//
// Register blocking. Each thread computes 4 x 4 outputs, not one: thread (tx, ty) owns rows
//     tile_row + ty + 16*r   (r = 0..3)   and columns   tile_col + tx + 16*q   (q = 0..3).
// The 16-apart layout makes the 16 threads of a half-warp, which differ in tx, read 16
// consecutive shared-memory words of the B tile (no bank conflicts) and write 16 consecutive
// elements of C (coalesced).
//
// Batches. blockIdx.z selects one matrix of a batch; stride_a / stride_b / stride_c are the
// distances between consecutive matrices (0 repeats the same matrix for every batch entry).
#include "common.cuh"

#define TILE_M 64        // rows of C per block
#define TILE_N 64        // columns of C per block
#define TILE_K 16        // depth of one step along K
#define THREADS_X 16     // blockDim.x
#define THREADS_Y 16     // blockDim.y
#define PER_THREAD 4     // each thread: 4 rows x 4 columns of C (TILE_M / THREADS_Y)

template <typename T>
__device__ void gemm_tiled_impl(const T* __restrict__ A, const T* __restrict__ B,
                                T* __restrict__ Cmat, int M, int N, int K,
                                int stride_a, int stride_b, int stride_c) {
    // Shared tiles. A's tile is stored transposed, a_tile[k][m], so that the inner loop reads
    // a_tile[k][ty + 16*r] for fixed k: the same word for all threads of a half-warp (a broadcast).
    // Its rows are padded by one word. Shared memory has 32 banks, word w in bank w % 32; the
    // loader below has 16 consecutive threads write a_tile[kk][m] for kk = 0..15 and one m. With
    // rows of 64 words those 16 words, 64 apart, would all sit in bank m % 32 and be written one
    // after another; with rows of 65 words, word kk*65 + m is in bank (kk + m) % 32: 16 banks.
    __shared__ T a_tile[TILE_K][TILE_M + 1];
    __shared__ T b_tile[TILE_K][TILE_N];

    const int tx = threadIdx.x;                       // 0..15, column inside the thread block
    const int ty = threadIdx.y;                       // 0..15, row inside the thread block
    const int thread_rank = ty * THREADS_X + tx;      // 0..255, position in the block
    const int tile_row = blockIdx.y * TILE_M;         // first row of C this block computes
    const int tile_col = blockIdx.x * TILE_N;         // first column of C this block computes

    // Move to this block's matrices of the batch.
    A += blockIdx.z * stride_a;
    B += blockIdx.z * stride_b;
    Cmat += blockIdx.z * stride_c;

    T acc[PER_THREAD][PER_THREAD];
    for (int r = 0; r < PER_THREAD; ++r)
        for (int q = 0; q < PER_THREAD; ++q) acc[r][q] = T(0);

    for (int k0 = 0; k0 < K; k0 += TILE_K) {
        // Load the 64 x 16 tile A[tile_row .. +63, k0 .. k0+15]: 1024 values, 4 per thread.
        // Element e = thread_rank + 256*l is (m, kk) = (e / 16, e % 16): consecutive threads read
        // consecutive kk along a row of A, which is contiguous in memory (coalesced).
        for (int l = 0; l < (TILE_M * TILE_K) / (THREADS_X * THREADS_Y); ++l) {
            const int e = thread_rank + l * THREADS_X * THREADS_Y;
            const int m = e / TILE_K;
            const int kk = e % TILE_K;
            const int row = tile_row + m;
            const int k = k0 + kk;
            a_tile[kk][m] = (row < M && k < K) ? A[row * K + k] : T(0);   // zero past the edge
        }
        // Load the 16 x 64 tile B[k0 .. k0+15, tile_col .. +63]: element e is (kk, n) =
        // (e / 64, e % 64), consecutive threads read consecutive columns of a row of B.
        for (int l = 0; l < (TILE_K * TILE_N) / (THREADS_X * THREADS_Y); ++l) {
            const int e = thread_rank + l * THREADS_X * THREADS_Y;
            const int kk = e / TILE_N;
            const int n = e % TILE_N;
            const int k = k0 + kk;
            const int col = tile_col + n;
            b_tile[kk][n] = (k < K && col < N) ? B[k * N + col] : T(0);
        }
        __syncthreads();                              // both tiles complete before anyone reads

        // Multiply the tiles: acc[r][q] += sum_kk A[row r, kk] * B[kk, column q].
        for (int kk = 0; kk < TILE_K; ++kk) {
            T a_values[PER_THREAD];
            T b_values[PER_THREAD];
            for (int r = 0; r < PER_THREAD; ++r) a_values[r] = a_tile[kk][ty + THREADS_Y * r];
            for (int q = 0; q < PER_THREAD; ++q) b_values[q] = b_tile[kk][tx + THREADS_X * q];
            for (int r = 0; r < PER_THREAD; ++r)
                for (int q = 0; q < PER_THREAD; ++q) acc[r][q] += a_values[r] * b_values[q];
        }
        __syncthreads();                              // everyone done before the tiles change
    }

    // Write the 4 x 4 results, skipping those outside C (the last tiles may overhang).
    for (int r = 0; r < PER_THREAD; ++r) {
        const int row = tile_row + ty + THREADS_Y * r;
        if (row >= M) continue;
        for (int q = 0; q < PER_THREAD; ++q) {
            const int col = tile_col + tx + THREADS_X * q;
            if (col < N) Cmat[row * N + col] = acc[r][q];
        }
    }
}

// ---- entry points: launch with block (16, 16, 1) and grid (ceil(N/64), ceil(M/64), batch) ---
extern "C" __global__ void gemm_tiled_f32(const float* A, const float* B, float* Cmat,
                                          int M, int N, int K,
                                          int stride_a, int stride_b, int stride_c) {
    gemm_tiled_impl<float>(A, B, Cmat, M, N, K, stride_a, stride_b, stride_c);
}
extern "C" __global__ void gemm_tiled_f64(const double* A, const double* B, double* Cmat,
                                          int M, int N, int K,
                                          int stride_a, int stride_b, int stride_c) {
    gemm_tiled_impl<double>(A, B, Cmat, M, N, K, stride_a, stride_b, stride_c);
}
