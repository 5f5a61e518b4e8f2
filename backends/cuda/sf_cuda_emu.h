/* spikeforge CUDA emulation header: compiles unchanged CUDA kernel text with g++
 * (-x c++ -std=c++17 -include sf_cuda_emu.h) and runs it on the CPU.
 *
 * Model of execution (see docs/cuda-emulator.md):
 *  - blocks run one after another; the threads of a block run as fibers, each on
 *    its own stack (mmap'd, guard page below), switched by a hand-written x86-64
 *    context switch (callee-saved registers only: the floating-point control state
 *    is shared by all fibers; ucontext elsewhere). A thread runs until it reaches
 *    __syncthreads() or a warp-level sync point (shuffle, ballot, __syncwarp) or
 *    returns; the scheduler then runs the next runnable thread in the configured
 *    order (forward, reverse, seeded random). A thread that has not blocked yet
 *    runs as a plain call on the scheduler's stack; only when it blocks does it keep
 *    that stack while the scheduler moves to a fresh one, so kernels without
 *    barriers cost no context switch at all.
 *  - __shared__ variables are thread_local (a block-scope thread_local is static,
 *    and `extern thread_local` is valid, so static and dynamic shared memory both
 *    work without rewriting the source). The module's whole TLS block is shared
 *    memory: it is filled with a poison byte before every block; the dynamic area
 *    is followed by a redzone that is checked after every block.
 *  - a __syncthreads() reached by only some threads (others exited, or wait at a
 *    different call site: __FILE__/__LINE__) is an error; so is a warp operation
 *    whose mask names a lane that waits elsewhere, or a shuffle reading a lane that
 *    does not take part (its value is undefined on hardware).
 *  - atomics are __atomic builtins (relaxed, like CUDA's); with -DSF_EMU_TSAN the
 *    fibers are announced to ThreadSanitizer and only barriers, __syncwarp and
 *    atomics create happens-before, so a racing non-atomic update is reported.
 * Parts: this file (CUDA surface, fibers, barriers, warp operations, kernel
 * registration), sf_cuda_emu_device.h (atomics, intrinsics), sf_cuda_emu_sched.h
 * (scheduler, poison and redzones, fault handling, the sf_emu_launch entry point).
 */
#ifndef SF_CUDA_EMU_H
#define SF_CUDA_EMU_H

/* System headers first: __noinline__ etc. are defined below and would break them. */
#include <stdint.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <float.h>
#include <assert.h>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <climits>
#include <cfloat>
#include <cassert>
#include <type_traits>
#include <utility>
#include <link.h>
#include <dlfcn.h>
#include <signal.h>
#include <setjmp.h>
#include <unistd.h>
#include <pthread.h>
#include <sys/mman.h>
/* the hand-written x86-64 context switch, or ucontext (portable; -DSF_EMU_UCONTEXT) */
#if defined(__x86_64__) && !defined(SF_EMU_UCONTEXT)
#define SF_EMU_ASM_SWITCH 1
#else
#define SF_EMU_ASM_SWITCH 0
#include <ucontext.h>
#endif
/* threads that have not blocked yet run as plain calls on the scheduler's stack */
#if SF_EMU_ASM_SWITCH && !defined(SF_EMU_TSAN)
#define SF_EMU_DIRECT 1
#else
#define SF_EMU_DIRECT 0
#endif

/* ---- qualifiers (as in CUDA's host_defines.h) -------------------------------- */
#define __global__ __attribute__((used))
#define __device__
#define __host__
#define __constant__
/* used: loads of a never-written shared array are not folded to zero; the attribute is
 * ignored (with a -Wattributes warning, silenced here) on extern declarations */
#pragma GCC diagnostic ignored "-Wattributes"
#define __shared__ thread_local __attribute__((used))
#define __forceinline__ __inline__ __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __CUDA_ARCH__ 800
#define __CUDACC__ 1
#define SF_CUDA_EMULATION 1

/* ---- built-in vector types and indices ---------------------------------------- */
struct uint3 { unsigned int x, y, z; };
struct dim3 {
    unsigned int x, y, z;
    constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x(vx), y(vy), z(vz) {}
    constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
};
static uint3 threadIdx;
static uint3 blockIdx;
static dim3 blockDim;
static dim3 gridDim;
static constexpr int warpSize = 32;

#ifdef SF_EMU_TSAN
#define SF_EMU_NOTSAN __attribute__((no_sanitize_thread, noinline))
extern "C" {
void *__tsan_get_current_fiber(void);
void *__tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void *fiber);
void __tsan_switch_to_fiber(void *fiber, unsigned flags);
void __tsan_set_fiber_name(void *fiber, const char *name);
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
}
#else
#define SF_EMU_NOTSAN
#endif

/* the dynamic shared memory area (defined by the launcher's registration code) */
extern "C" thread_local char sf_emu_dyn_shared[];
#ifndef SF_EMU_DYN_MAX
#define SF_EMU_DYN_MAX (227 * 1024)
#endif
#define SF_EMU_REDZONE 256
#define SF_EMU_POISON 0xFF
#define SF_EMU_RZ_BYTE 0xFD

namespace sf_emu {

enum { T_RUN = 0, T_BAR = 1, T_WARP = 2, T_DONE = 3 };
enum { OP_SYNC = 1, OP_IDX, OP_UP, OP_DOWN, OP_XOR, OP_BALLOT, OP_ANY, OP_ALL, OP_ACTIVE };
static const char *const OP_NAMES[] = {"", "__syncwarp", "__shfl_sync", "__shfl_up_sync",
                                       "__shfl_down_sync", "__shfl_xor_sync", "__ballot_sync",
                                       "__any_sync", "__all_sync", "__activemask"};

struct Thread {
    void *sp;
    int state;
    unsigned lin;
    uint3 tid;
    const char *file;   /* barrier / warp-op call site */
    int line;
    int op;             /* warp operation */
    unsigned mask;
    uint64_t val;
    int arg, width;
    uint64_t res;
    unsigned stack;
#ifdef SF_EMU_TSAN
    void *fiber;
#endif
};

struct Launch {
    void (*tramp)(const uint64_t *);
    const uint64_t *slots;
    const char *kernel;
    Thread *threads;
    unsigned nthreads, capacity;
    char *stacks;
    unsigned *free_stacks, nfree;
    size_t stack_size;
    Thread *cur;
    void *sched_sp, *launcher_sp, *dead_sp;
    unsigned sched_stack;                        /* the scheduler's stack (direct mode) */
    unsigned pk, bk, nb, *perm, *bperm, perm_cap, bperm_cap; /* scheduler position */
    int block_active;
    int order;
    uint64_t rng;
    char *err;
    size_t errlen;
    int failed;
    size_t shmem;
    char *tls_start;
    size_t tls_size;
    pthread_t tls_owner;
    int have_tls, tls_found;
    const uint64_t *rz_pairs;   /* redzones of the static shared variables: (offset, length) */
    const char **rz_labels;     /* in the TLS block, and what each redzone borders */
    uint64_t rz_n;
    char *sync_obj, end_sync; /* TSan sync objects */
#ifdef SF_EMU_TSAN
    void *main_fiber;
#endif
#if !SF_EMU_ASM_SWITCH
    ucontext_t sched_uc;
    ucontext_t *ucs;
#endif
};
static Launch L;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
SF_EMU_NOTSAN static inline void fail(const char *fmt, ...)
{
    if (L.failed) return;
    L.failed = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(L.err, L.errlen, fmt, ap);
    va_end(ap);
}

/* ---- context switch ----------------------------------------------------------- */
#if SF_EMU_ASM_SWITCH
extern "C" void sf_emu_switch(void **save_sp, void *to_sp);
extern "C" void sf_emu_entry(void);
asm(R"(
    .text
    .p2align 4
    .globl sf_emu_switch
    .hidden sf_emu_switch
    .type sf_emu_switch,@function
sf_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size sf_emu_switch, .-sf_emu_switch
    .p2align 4
    .globl sf_emu_entry
    .hidden sf_emu_entry
    .type sf_emu_entry,@function
sf_emu_entry:
    movq %r12, %rdi
    callq *%r13
    ud2
    .size sf_emu_entry, .-sf_emu_entry
)");
#endif

static void thread_main(Thread *t);
static const unsigned DIRECT = 0xFFFFFFFFu; /* Thread::stack: running on the scheduler's stack */

#if !SF_EMU_ASM_SWITCH
static void uc_entry(unsigned hi, unsigned lo)
{
    thread_main((Thread *)(((uintptr_t)hi << 32) | lo));
}
#endif

/* The top of stack s, staggered: equal offsets modulo the stack size would map every
 * fiber's hot frame to the same cache sets. */
SF_EMU_NOTSAN static inline char *stack_top(unsigned s)
{
    return L.stacks + (size_t)(s + 1) * L.stack_size - (size_t)(s % 97) * 320;
}

#if SF_EMU_ASM_SWITCH
/* A context on stack s that calls fn(arg) when switched to (see sf_emu_entry). */
SF_EMU_NOTSAN static inline void *context_init(unsigned s, void (*fn)(void *), void *arg)
{
    uint64_t *sp = (uint64_t *)(((uintptr_t)stack_top(s) - 16) & ~(uintptr_t)15);
    *--sp = (uint64_t)(uintptr_t)&sf_emu_entry;  /* return address */
    *--sp = 0;                                   /* rbp */
    *--sp = 0;                                   /* rbx */
    *--sp = (uint64_t)(uintptr_t)arg;            /* r12: argument */
    *--sp = (uint64_t)(uintptr_t)fn;             /* r13: function */
    *--sp = 0;                                   /* r14 */
    *--sp = 0;                                   /* r15 */
    return sp;
}
#endif

/* Give thread t stack s and prepare it so that switching to it calls thread_main(t). */
SF_EMU_NOTSAN static inline void fiber_init(Thread *t, unsigned s)
{
    t->stack = s;
#if SF_EMU_ASM_SWITCH
    t->sp = context_init(s, (void (*)(void *))&thread_main, t);
#else
    ucontext_t *uc = &L.ucs[t - L.threads];
    getcontext(uc);
    char *bottom = L.stacks + (size_t)s * L.stack_size + 4096; /* above the guard page */
    uc->uc_stack.ss_sp = bottom;
    uc->uc_stack.ss_size = (size_t)(((uintptr_t)stack_top(s) & ~(uintptr_t)15) - (uintptr_t)bottom);
    uc->uc_link = nullptr;
    makecontext(uc, (void (*)())uc_entry, 2, (unsigned)((uintptr_t)t >> 32), (unsigned)(uintptr_t)t);
    t->sp = uc;
#endif
}

/* Start or resume thread t on its own fiber until it blocks or exits. A thread takes a
 * stack from the free list when it first runs and returns it when it exits. */
SF_EMU_NOTSAN static inline void to_thread(Thread *t)
{
    if (!t->sp) fiber_init(t, L.free_stacks[--L.nfree]);
    L.cur = t;
    threadIdx = t->tid;
#ifdef SF_EMU_TSAN
    __tsan_switch_to_fiber(t->fiber, 1);
#endif
#if SF_EMU_ASM_SWITCH
    sf_emu_switch(&L.sched_sp, t->sp);
#else
    swapcontext(&L.sched_uc, (ucontext_t *)t->sp);
#endif
#ifndef SF_EMU_TSAN /* under TSan every fiber keeps its own stack (no false races) */
    if (t->state == T_DONE) L.free_stacks[L.nfree++] = t->stack;
#endif
}

#if SF_EMU_DIRECT
static void sched_entry(void *);

/* A thread running directly on the scheduler's stack blocks: it keeps that stack (its
 * frames sit on top of the scheduler's), and the scheduler continues on a fresh stack,
 * re-entering its loops from the state kept in L (sched_entry). */
SF_EMU_NOTSAN static inline void detach(Thread *t)
{
    t->stack = L.sched_stack;
    L.sched_stack = L.free_stacks[--L.nfree];
    sf_emu_switch(&t->sp, context_init(L.sched_stack, &sched_entry, nullptr));
}

/* Run a thread that has not started as a plain call: no context switch at all unless
 * it blocks. If it blocked (detach) and has now returned, this frame lies on its own
 * stack: hand control to the current scheduler, which frees that stack. */
SF_EMU_NOTSAN __attribute__((noinline)) static void run_direct(Thread *t)
{
    t->stack = DIRECT;
    L.cur = t;
    threadIdx = t->tid;
    L.tramp(L.slots);
    t->state = T_DONE;
    if (t->stack == DIRECT) return;
    sf_emu_switch(&t->sp, L.sched_sp);
    __builtin_trap();
}
#endif

SF_EMU_NOTSAN static inline void run_thread(Thread *t)
{
#if SF_EMU_DIRECT
    if (!t->sp) {
        run_direct(t);
        return;
    }
#endif
    to_thread(t);
}

SF_EMU_NOTSAN static inline void to_scheduler(Thread *t)
{
#if SF_EMU_DIRECT
    if (t->stack == DIRECT) {
        detach(t);
        return;
    }
#endif
#ifdef SF_EMU_TSAN
    __tsan_switch_to_fiber(L.main_fiber, 1);
#endif
#if SF_EMU_ASM_SWITCH
    sf_emu_switch(&t->sp, L.sched_sp);
#else
    swapcontext(&L.ucs[t - L.threads], &L.sched_uc);
#endif
}

SF_EMU_NOTSAN static void thread_main(Thread *t)
{
#ifdef SF_EMU_TSAN
    __tsan_acquire(L.sync_obj + 40);  /* the host's writes before the launch */
#endif
    L.tramp(L.slots);
    t = L.cur;
    t->state = T_DONE;
#ifdef SF_EMU_TSAN
    __tsan_release(&L.end_sync);
#endif
    to_scheduler(t);
    __builtin_trap();
}

/* ---- barrier and warp operations (called from kernel code) ---------------------- */
/* __syncthreads() (kind 0) and __syncthreads_count/_and/_or (kinds 1-3, which
 * return the count of / whether all / whether any thread had pred != 0). */
SF_EMU_NOTSAN static inline int syncthreads(const char *file, int line, int kind = 0, int pred = 0)
{
    Thread *t = L.cur;
    t->state = T_BAR;
    t->file = file;
    t->line = line;
    t->op = kind;
    t->val = pred != 0;
#ifdef SF_EMU_TSAN
    __tsan_release(L.sync_obj);
#endif
    to_scheduler(t);
#ifdef SF_EMU_TSAN
    __tsan_acquire(L.sync_obj);
#endif
    return (int)L.cur->res;
}

SF_EMU_NOTSAN static inline uint64_t warp_op(int op, unsigned mask, uint64_t val, int arg, int width,
                                      const char *file, int line)
{
    Thread *t = L.cur;
    unsigned lane = t->lin % 32;
    if (!((mask >> lane) & 1u)) {
        fail("kernel '%s' block (%u,%u,%u) thread (%u,%u,%u): %s at %s:%d with mask 0x%08x that "
             "does not include the calling lane %u", L.kernel, blockIdx.x, blockIdx.y, blockIdx.z,
             t->tid.x, t->tid.y, t->tid.z, OP_NAMES[op], file, line, mask, lane);
    }
    if (op >= OP_IDX && op <= OP_XOR && (width < 1 || width > 32 || (width & (width - 1)))) {
        fail("kernel '%s' block (%u,%u,%u) thread (%u,%u,%u): %s at %s:%d with width %d (must be "
             "a power of 2 <= 32)", L.kernel, blockIdx.x, blockIdx.y, blockIdx.z, t->tid.x,
             t->tid.y, t->tid.z, OP_NAMES[op], file, line, width);
    }
    t->state = T_WARP;
    t->op = op;
    t->mask = mask;
    t->val = val;
    t->arg = arg;
    t->width = width;
    t->file = file;
    t->line = line;
    unsigned w = t->lin / 32;
    (void)w;
#ifdef SF_EMU_TSAN
    if (op == OP_SYNC) __tsan_release(L.sync_obj + 1 + w % 32);
#endif
    to_scheduler(t);
#ifdef SF_EMU_TSAN
    if (op == OP_SYNC) __tsan_acquire(L.sync_obj + 1 + w % 32);
#endif
    return L.cur->res;
}


template <class T> static inline uint64_t bits(T v)
{
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffle of a type > 8 bytes");
    uint64_t b = 0;
    memcpy(&b, &v, sizeof(T));
    return b;
}
template <class T> static inline T unbits(uint64_t b)
{
    T v;
    memcpy(&v, &b, sizeof(T));
    return v;
}
template <class T> static inline T shfl(int op, const char *file, int line, unsigned mask, T var,
                                        int arg, int width = warpSize)
{
    return unbits<T>(warp_op(op, mask, bits(var), arg, width, file, line));
}

} /* namespace sf_emu */

#define __syncthreads() ((void)sf_emu::syncthreads(__FILE__, __LINE__))
#define __syncthreads_count(pred) sf_emu::syncthreads(__FILE__, __LINE__, 1, (pred))
#define __syncthreads_and(pred) sf_emu::syncthreads(__FILE__, __LINE__, 2, (pred))
#define __syncthreads_or(pred) sf_emu::syncthreads(__FILE__, __LINE__, 3, (pred))
#define __syncwarp(...) ((void)sf_emu::warp_op(sf_emu::OP_SYNC, sf_emu_mask_(__VA_ARGS__), 0, 0, 32, __FILE__, __LINE__))
static inline unsigned sf_emu_mask_(unsigned m = 0xffffffffu) { return m; }
#define __shfl_sync(...) sf_emu::shfl(sf_emu::OP_IDX, __FILE__, __LINE__, __VA_ARGS__)
#define __shfl_up_sync(...) sf_emu::shfl(sf_emu::OP_UP, __FILE__, __LINE__, __VA_ARGS__)
#define __shfl_down_sync(...) sf_emu::shfl(sf_emu::OP_DOWN, __FILE__, __LINE__, __VA_ARGS__)
#define __shfl_xor_sync(...) sf_emu::shfl(sf_emu::OP_XOR, __FILE__, __LINE__, __VA_ARGS__)
#define __ballot_sync(mask, pred) ((unsigned)sf_emu::warp_op(sf_emu::OP_BALLOT, (mask), (pred) ? 1 : 0, 0, 32, __FILE__, __LINE__))
#define __any_sync(mask, pred) ((int)sf_emu::warp_op(sf_emu::OP_ANY, (mask), (pred) ? 1 : 0, 0, 32, __FILE__, __LINE__))
#define __all_sync(mask, pred) ((int)sf_emu::warp_op(sf_emu::OP_ALL, (mask), (pred) ? 1 : 0, 0, 32, __FILE__, __LINE__))
/* __activemask(): the lanes of the warp that reach an __activemask() in the same
 * scheduling round (converged code: all lanes that have not exited). */
#define __activemask() ((unsigned)sf_emu::warp_op(sf_emu::OP_ACTIVE, 1u << (sf_emu::L.cur->lin % 32), 0, 0, 32, __FILE__, __LINE__))

/* ---- kernel registration (the launcher appends SF_EMU_KERNEL(name) per kernel) ------- */
namespace sf_emu {
template <class P> static inline P load_arg(const uint64_t *s)
{
    P v;
    memcpy((void *)&v, s, sizeof(P));
    return v;
}
template <class... P, size_t... I>
static inline void invoke_impl(void (*f)(P...), const uint64_t *s, std::index_sequence<I...>)
{
    f(load_arg<P>(s + I)...);
}
template <class... P> static inline void invoke(void (*f)(P...), const uint64_t *s)
{
    invoke_impl(f, s, std::index_sequence_for<P...>{});
}
template <class T> static inline void type_code(char *out)
{
    typedef typename std::remove_cv<T>::type U;
    char c = std::is_void<U>::value ? 'v'
             : std::is_same<U, bool>::value ? 'b'
             : std::is_floating_point<U>::value ? 'f'
             : std::is_integral<U>::value ? (std::is_signed<U>::value ? 'i' : 'u')
             : std::is_pointer<U>::value ? 'p' : 'o';
    snprintf(out, 24, "%c%zu", c, (size_t)sizeof(typename std::conditional<std::is_void<U>::value, char, U>::type) * !std::is_void<U>::value);
}
template <class P> static inline void append_code(char *buf)
{
    char one[32];
    if (std::is_pointer<P>::value) {
        one[0] = 'p';
        type_code<typename std::remove_pointer<P>::type>(one + 1);
    } else {
        one[0] = 's';
        type_code<P>(one + 1);
    }
    if (buf[0]) strcat(buf, ",");
    strcat(buf, one);
}
template <class... P> static inline const char *signature(void (*)(P...))
{
    static char buf[2048];
    buf[0] = 0;
    (append_code<P>(buf), ...);
    return buf;
}
} /* namespace sf_emu */

#define SF_EMU_KERNEL(name) \
    extern "C" void sf_emu_tramp_##name(const uint64_t *s) { sf_emu::invoke(&name, s); } \
    extern "C" const char *sf_emu_sig_##name(void) { return sf_emu::signature(&name); }

#include "sf_cuda_emu_device.h"
#include "sf_cuda_emu_sched.h"

#endif /* SF_CUDA_EMU_H */
