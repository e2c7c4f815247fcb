// cuda_emulation.h: just enough of CUDA to run our kernels on the CPU.
//
// minitorch_alexnet/cuda/emulate.py compiles every kernels/*.cu file with the host C++ compiler,
// force-including this header first:
//     g++ -std=c++17 -O1 -fPIC -include cuda_emulation.h ...
// The kernel source is unchanged. This header
//   * turns the CUDA keywords (__global__, __device__, __shared__, ...) into plain C++;
//   * defines threadIdx, blockIdx, blockDim and gridDim as global variables that the launcher
//     sets before it calls the kernel function once for every thread of the grid;
//   * implements __syncthreads() with one cooperative "fiber" (a ucontext coroutine) per thread
//     of a block: a thread that reaches the barrier pauses, the next thread of the block runs up
//     to the barrier, and when all have arrived they continue in turn. `__shared__` becomes
//     `static`, so every thread of the block sees the same array (blocks run one after another,
//     so the next block reuses it, exactly as a GPU block would find uninitialised memory).
//
// The launcher (emu_launch below) walks the grid in the order blockIdx.z, .y, .x and, inside a
// block, threadIdx.z, .y, .x. A GPU runs them in parallel and in no fixed order: a kernel that
// is correct on the GPU must not depend on the order, so the emulation is free to pick one.
#pragma once
#ifdef __CUDACC__
#error "cuda_emulation.h is for the host compiler only"
#endif

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>      // so that printf() inside a kernel works here as it does on the GPU
#include <cstring>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>
#include <ucontext.h>

// ---- keywords ---------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __shared__ static

// ---- built-in variables ---------------------------------------------------------------------
struct dim3 {
    unsigned int x, y, z;
};
typedef dim3 uint3;

inline uint3 threadIdx = {0, 0, 0};
inline uint3 blockIdx = {0, 0, 0};
inline dim3 blockDim = {1, 1, 1};
inline dim3 gridDim = {1, 1, 1};

// ---- device intrinsics used by the kernels ------------------------------------------------
inline float __int_as_float(int bits) {
    float value;
    std::memcpy(&value, &bits, sizeof value);
    return value;
}
inline double __longlong_as_double(long long bits) {
    double value;
    std::memcpy(&value, &bits, sizeof value);
    return value;
}

// ---- __syncthreads with one fiber per thread ----------------------------------------------
namespace emu {

struct Fiber {
    ucontext_t context;
    std::vector<char> stack;
    bool finished = false;
};

inline std::vector<Fiber> fibers;           // one per thread of the current block
inline ucontext_t scheduler_context;        // where a fiber returns to at a barrier or at its end
inline std::size_t current_fiber = 0;       // which fiber is running
inline bool running_in_fiber = false;       // false while a barrier-free kernel runs plainly
inline std::function<void()> fiber_body;    // "call the kernel with its arguments"
constexpr std::size_t fiber_stack_bytes = 256 * 1024;

inline void fiber_entry() {
    fiber_body();
    fibers[current_fiber].finished = true;
    // returning resumes uc_link, the scheduler
}

// Set threadIdx from a thread's rank inside its block (x varies fastest, then y, then z).
inline void set_thread_index(std::size_t rank) {
    threadIdx.x = (unsigned int)(rank % blockDim.x);
    threadIdx.y = (unsigned int)((rank / blockDim.x) % blockDim.y);
    threadIdx.z = (unsigned int)(rank / ((std::size_t)blockDim.x * blockDim.y));
}

// Run one block: every thread starts as a fiber; each round resumes, in rank order, every
// thread that has not finished; a thread runs until its next __syncthreads() or its end.
inline void run_block_with_barriers(std::size_t threads_per_block) {
    if (fibers.size() < threads_per_block) fibers.resize(threads_per_block);
    for (std::size_t rank = 0; rank < threads_per_block; ++rank) {
        Fiber &fiber = fibers[rank];
        if (fiber.stack.empty()) fiber.stack.resize(fiber_stack_bytes);
        fiber.finished = false;
        getcontext(&fiber.context);
        fiber.context.uc_stack.ss_sp = fiber.stack.data();
        fiber.context.uc_stack.ss_size = fiber.stack.size();
        fiber.context.uc_link = &scheduler_context;
        makecontext(&fiber.context, fiber_entry, 0);
    }
    running_in_fiber = true;
    bool any_running = true;
    while (any_running) {
        any_running = false;
        for (std::size_t rank = 0; rank < threads_per_block; ++rank) {
            if (fibers[rank].finished) continue;
            current_fiber = rank;
            set_thread_index(rank);
            swapcontext(&scheduler_context, &fibers[rank].context);
            if (!fibers[rank].finished) any_running = true;
        }
    }
    running_in_fiber = false;
}

}  // namespace emu

inline void __syncthreads() {
    if (emu::running_in_fiber) {
        swapcontext(&emu::fibers[emu::current_fiber].context, &emu::scheduler_context);
    }
}

// ---- the launcher ---------------------------------------------------------------------------
namespace emu {

// Call `kernel` with its arguments read from `params`, an array of pointers to the argument
// values (the same convention as CUDA's cuLaunchKernel): params[i] points to argument i.
template <typename... Args, std::size_t... I>
void call_with_params(void (*kernel)(Args...), void **params, std::index_sequence<I...>) {
    kernel(*static_cast<std::remove_reference_t<Args> *>(params[I])...);
}

// Run `kernel` over a grid of grid_x*grid_y*grid_z blocks of block_x*block_y*block_z threads.
// with_barriers: the kernel calls __syncthreads(), so the threads of a block run as fibers.
template <typename... Args>
void launch(void (*kernel)(Args...), const unsigned int grid[3], const unsigned int block[3],
            void **params, bool with_barriers) {
    gridDim = {grid[0], grid[1], grid[2]};
    blockDim = {block[0], block[1], block[2]};
    const std::size_t threads_per_block = (std::size_t)block[0] * block[1] * block[2];
    fiber_body = [kernel, params]() {
        call_with_params(kernel, params, std::index_sequence_for<Args...>{});
    };
    for (unsigned int bz = 0; bz < grid[2]; ++bz)
        for (unsigned int by = 0; by < grid[1]; ++by)
            for (unsigned int bx = 0; bx < grid[0]; ++bx) {
                blockIdx = {bx, by, bz};
                if (with_barriers) {
                    run_block_with_barriers(threads_per_block);
                    continue;
                }
                for (std::size_t rank = 0; rank < threads_per_block; ++rank) {
                    set_thread_index(rank);
                    fiber_body();
                }
            }
}

}  // namespace emu

// EMU_EXPORT(name) defines `extern "C" void emu_launch_<name>(grid, block, params)` for a kernel
// that never calls __syncthreads; EMU_EXPORT_WITH_BARRIERS(name) for one that does. emulate.py
// generates these lines, one per `extern "C" __global__` function found in the .cu file.
#define EMU_EXPORT(name)                                                                   \
    extern "C" void emu_launch_##name(const unsigned int *grid, const unsigned int *block,  \
                                      void **params) {                                     \
        emu::launch(name, grid, block, params, false);                                     \
    }
#define EMU_EXPORT_WITH_BARRIERS(name)                                                     \
    extern "C" void emu_launch_##name(const unsigned int *grid, const unsigned int *block,  \
                                      void **params) {                                     \
        emu::launch(name, grid, block, params, true);                                      \
    }
