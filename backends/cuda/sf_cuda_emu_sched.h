/* spikeforge CUDA emulation: the block scheduler, shared-memory poisoning and
 * redzones, fault handling, the launch entry point sf_emu_launch and kernel
 * registration (included by sf_cuda_emu.h; see docs/cuda-emulator.md). */
#ifndef SF_CUDA_EMU_SCHED_H
#define SF_CUDA_EMU_SCHED_H
/* ---- scheduler ------------------------------------------------------------------ */
namespace sf_emu {

#ifdef SF_EMU_TSAN
static const size_t STACK_SIZE = 256 * 1024;
#else
static const size_t STACK_SIZE = 256 * 1024;
#endif

SF_EMU_NOTSAN static inline int reserve_threads(unsigned n)
{
    if (n <= L.capacity) return 0;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (L.stacks) munmap(L.stacks, (size_t)L.capacity * L.stack_size);
    free(L.threads);
    free(L.free_stacks);
    L.free_stacks = (unsigned *)calloc(n, sizeof(unsigned));
#if !SF_EMU_ASM_SWITCH
    free(L.ucs);
    L.ucs = (ucontext_t *)calloc(n, sizeof(ucontext_t));
#endif
    L.stack_size = STACK_SIZE;
    L.threads = (Thread *)calloc(n, sizeof(Thread));
    void *m = mmap(nullptr, (size_t)n * L.stack_size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED || !L.threads) {
        L.stacks = nullptr;
        L.capacity = 0;
        fail("emulator: cannot allocate %u thread stacks", n);
        return -1;
    }
    L.stacks = (char *)m;
    for (unsigned i = 0; i < n; i++) mprotect(L.stacks + (size_t)i * L.stack_size, page, PROT_NONE);
    L.capacity = n;
    return 0;
}

/* Give back the thread stacks and records (reserve_threads makes them again on the next
 * launch): every stack's guard page is a memory mapping of its own, and a process may
 * hold only vm.max_map_count of them, so the host keeps stacks in a few libraries only. */
extern "C" SF_EMU_NOTSAN void sf_emu_release_threads(void)
{
    if (L.stacks) munmap(L.stacks, (size_t)L.capacity * L.stack_size);
    L.stacks = nullptr;
    free(L.threads);
    L.threads = nullptr;
    free(L.free_stacks);
    L.free_stacks = nullptr;
#if !SF_EMU_ASM_SWITCH
    free(L.ucs);
    L.ucs = nullptr;
#endif
    L.capacity = 0;
}

SF_EMU_NOTSAN static int find_tls_cb(struct dl_phdr_info *info, size_t, void *base)
{
    if ((void *)info->dlpi_addr != base) return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        if (info->dlpi_phdr[i].p_type == PT_TLS) {
            L.tls_start = (char *)info->dlpi_tls_data;
            L.tls_size = info->dlpi_phdr[i].p_memsz;
        }
    }
    return 1;
}

/* The address and size of this module's TLS block (= all shared memory) in this OS thread. */
SF_EMU_NOTSAN static inline void find_tls(void)
{
    if (L.have_tls && pthread_equal(L.tls_owner, pthread_self())) return;
    *(volatile char *)sf_emu_dyn_shared = 0; /* allocates the block in this thread */
    Dl_info di;
    L.tls_start = nullptr;
    if (dladdr((void *)&find_tls_cb, &di)) dl_iterate_phdr(find_tls_cb, (void *)((char *)di.dli_fbase - 0));
    L.tls_found = L.tls_start != nullptr;
    if (!L.tls_start) { /* fall back to the dynamic area only */
        L.tls_start = sf_emu_dyn_shared;
        L.tls_size = SF_EMU_DYN_MAX + SF_EMU_REDZONE;
    }
    L.have_tls = 1;
    L.tls_owner = pthread_self();
}

SF_EMU_NOTSAN static inline void poison_shared(void)
{
    char *dyn = sf_emu_dyn_shared, *end = L.tls_start + L.tls_size;
    char *dyn_end = dyn + SF_EMU_DYN_MAX + SF_EMU_REDZONE;
    if (dyn > L.tls_start) memset(L.tls_start, SF_EMU_POISON, (size_t)(dyn - L.tls_start));
    if (end > dyn_end) memset(dyn_end, SF_EMU_POISON, (size_t)(end - dyn_end));
    memset(dyn, SF_EMU_POISON, L.shmem);
    memset(dyn + L.shmem, SF_EMU_RZ_BYTE, SF_EMU_REDZONE);
    if (L.tls_found)
        for (uint64_t i = 0; i < L.rz_n; i++)
            memset(L.tls_start + L.rz_pairs[2 * i], SF_EMU_RZ_BYTE, L.rz_pairs[2 * i + 1]);
}

/* Index of the first byte of [p, p + n) that is not the redzone pattern, or -1. */
SF_EMU_NOTSAN static inline int64_t find_dirty(const unsigned char *p, uint64_t n)
{
    static unsigned char pattern[4096];
    if (pattern[0] != SF_EMU_RZ_BYTE) memset(pattern, SF_EMU_RZ_BYTE, sizeof pattern);
    for (uint64_t o = 0; o < n; o += sizeof pattern) {
        uint64_t len = n - o < sizeof pattern ? n - o : sizeof pattern;
        if (memcmp(p + o, pattern, len) == 0) continue;
        for (uint64_t j = 0; j < len; j++)
            if (p[o + j] != SF_EMU_RZ_BYTE) return (int64_t)(o + j);
    }
    return -1;
}

SF_EMU_NOTSAN static inline void check_shared_redzone(void)
{
    if (L.tls_found)
        for (uint64_t i = 0; i < L.rz_n; i++) {
            uint64_t len = L.rz_pairs[2 * i + 1];
            int64_t at = find_dirty((const unsigned char *)L.tls_start + L.rz_pairs[2 * i], len);
            if (at < 0) continue;
            int before = strncmp(L.rz_labels[i], "before", 6) == 0;
            fail("kernel '%s' block (%u,%u,%u): out-of-bounds write %s (byte offset %+lld "
                 "from its %s)", L.kernel, blockIdx.x, blockIdx.y, blockIdx.z, L.rz_labels[i],
                 (long long)(before ? at - (int64_t)len : at), before ? "start" : "end");
            return;
        }
    static unsigned char pattern[SF_EMU_REDZONE];
    if (pattern[0] != SF_EMU_RZ_BYTE) memset(pattern, SF_EMU_RZ_BYTE, sizeof pattern);
    const unsigned char *rz = (const unsigned char *)sf_emu_dyn_shared + L.shmem;
    if (memcmp(rz, pattern, SF_EMU_REDZONE) == 0) return;
    for (unsigned i = 0; i < SF_EMU_REDZONE; i++) {
        if (rz[i] != SF_EMU_RZ_BYTE) {
            fail("kernel '%s' block (%u,%u,%u): out-of-bounds write to dynamic shared memory "
                 "(shared_mem=%zu bytes) at byte offset %zu", L.kernel, blockIdx.x, blockIdx.y,
                 blockIdx.z, L.shmem, L.shmem + i);
            return;
        }
    }
}

SF_EMU_NOTSAN static inline uint64_t next_random(void)
{
    uint64_t z = (L.rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

SF_EMU_NOTSAN static inline void permute(unsigned *perm, unsigned n)
{
    for (unsigned i = 0; i < n; i++) perm[i] = L.order == 1 ? n - 1 - i : i;
    if (L.order == 2)
        for (unsigned i = n; i > 1; i--) {
            unsigned j = (unsigned)(next_random() % i), tmp = perm[i - 1];
            perm[i - 1] = perm[j];
            perm[j] = tmp;
        }
}

#define SF_T(t) (t)->tid.x, (t)->tid.y, (t)->tid.z
#define SF_B blockIdx.x, blockIdx.y, blockIdx.z

SF_EMU_NOTSAN static inline int shuffle_source(const Thread *u, unsigned lane)
{
    unsigned w = (unsigned)u->width, seg = lane & ~(w - 1), d = (unsigned)u->arg;
    switch (u->op) {
    case OP_IDX: return (int)(seg | ((unsigned)u->arg & (w - 1)));
    case OP_UP: return (lane & (w - 1)) < d ? (int)lane : (int)(lane - d);
    case OP_DOWN: return (lane & (w - 1)) + d >= w ? (int)lane : (int)(lane + d);
    default: {
        unsigned src = lane ^ (d & 31u);
        return src >= seg + w ? (int)lane : (int)src;
    }
    }
}

/* Complete the warp operation of the group that thread t waits in; 0 when a lane of
 * the group is still running (resolved in a later round). */
SF_EMU_NOTSAN static inline int complete_group(unsigned base, unsigned exist, Thread *t)
{
    unsigned members = 0, g = t->mask & exist;
    if (t->op == OP_ACTIVE) {
        for (unsigned m = 0; m < 32; m++)
            if (((exist >> m) & 1u) && L.threads[base + m].state == T_WARP &&
                L.threads[base + m].op == OP_ACTIVE)
                members |= 1u << m;
        for (unsigned m = 0; m < 32; m++)
            if ((members >> m) & 1u) {
                L.threads[base + m].res = members;
                L.threads[base + m].state = T_RUN;
            }
        return 1;
    }
    for (unsigned m = 0; m < 32; m++) {
        if (!((g >> m) & 1u)) continue;
        Thread *u = &L.threads[base + m];
        if (u->state == T_DONE) continue; /* exited lanes are ignored (sm_70+) */
        if (u->state == T_RUN) return 0;
        if (u->state == T_BAR) {
            fail("kernel '%s' block (%u,%u,%u): thread (%u,%u,%u) waits in %s at %s:%d (mask "
                 "0x%08x) for thread (%u,%u,%u), which waits at __syncthreads() at %s:%d "
                 "(deadlock)", L.kernel, SF_B, SF_T(t), OP_NAMES[t->op], t->file, t->line,
                 t->mask, SF_T(u), u->file, u->line);
            return 0;
        }
        if (u->op == OP_ACTIVE) return 0;
        if (u->op != t->op || u->mask != t->mask) {
            fail("kernel '%s' block (%u,%u,%u): threads (%u,%u,%u) and (%u,%u,%u) of one warp "
                 "disagree: %s at %s:%d with mask 0x%08x vs %s at %s:%d with mask 0x%08x",
                 L.kernel, SF_B, SF_T(t), SF_T(u), OP_NAMES[t->op], t->file, t->line, t->mask,
                 OP_NAMES[u->op], u->file, u->line, u->mask);
            return 0;
        }
        members |= 1u << m;
    }
    uint64_t ballot = 0;
    int all = 1;
    for (unsigned m = 0; m < 32; m++)
        if ((members >> m) & 1u) {
            ballot |= (L.threads[base + m].val ? 1ull : 0ull) << m;
            all &= L.threads[base + m].val != 0;
        }
    for (unsigned m = 0; m < 32; m++) {
        if (!((members >> m) & 1u)) continue;
        Thread *u = &L.threads[base + m];
        switch (u->op) {
        case OP_SYNC: u->res = 0; break;
        case OP_BALLOT: u->res = ballot; break;
        case OP_ANY: u->res = ballot != 0; break;
        case OP_ALL: u->res = (uint64_t)all; break;
        default: {
            int src = shuffle_source(u, m);
            if (src != (int)m && !((members >> src) & 1u)) {
                fail("kernel '%s' block (%u,%u,%u): thread (%u,%u,%u) (lane %u) reads lane %d in "
                     "%s at %s:%d, but lane %d does not take part (mask 0x%08x; exited or beyond "
                     "blockDim): the value is undefined on a GPU", L.kernel, SF_B, SF_T(u), m, src,
                     OP_NAMES[u->op], u->file, u->line, src, u->mask);
                return 0;
            }
            u->res = L.threads[base + src].val;
        }
        }
    }
    for (unsigned m = 0; m < 32; m++)
        if ((members >> m) & 1u) L.threads[base + m].state = T_RUN;
    return 1;
}

SF_EMU_NOTSAN static inline int resolve_warps(void)
{
    int resolved = 0;
    for (unsigned base = 0; base < L.nthreads && !L.failed; base += 32) {
        unsigned nl = L.nthreads - base < 32 ? L.nthreads - base : 32;
        unsigned exist = nl == 32 ? 0xffffffffu : (1u << nl) - 1u;
        for (unsigned l = 0; l < nl && !L.failed; l++) {
            if (L.threads[base + l].state != T_WARP) continue;
            resolved += complete_group(base, exist, &L.threads[base + l]);
        }
    }
    return resolved;
}

/* All threads are at a barrier or exited: release the barrier or report divergence. */
SF_EMU_NOTSAN static inline int release_barrier(void)
{
    Thread *first = nullptr, *done = nullptr;
    for (unsigned i = 0; i < L.nthreads; i++) {
        Thread *t = &L.threads[i];
        if (t->state == T_DONE) {
            if (!done) done = t;
            continue;
        }
        if (t->state == T_WARP) {
            fail("kernel '%s' block (%u,%u,%u): thread (%u,%u,%u) waits forever in %s at %s:%d "
                 "(mask 0x%08x): a lane of the mask never reaches it", L.kernel, SF_B, SF_T(t),
                 OP_NAMES[t->op], t->file, t->line, t->mask);
            return 0;
        }
        if (!first) {
            first = t;
        } else if (t->line != first->line || (t->file != first->file && strcmp(t->file, first->file))) {
            fail("kernel '%s' block (%u,%u,%u): divergent __syncthreads(): thread (%u,%u,%u) waits "
                 "at %s:%d, thread (%u,%u,%u) at %s:%d", L.kernel, SF_B, SF_T(first), first->file,
                 first->line, SF_T(t), t->file, t->line);
            return 0;
        }
    }
    if (!first) return 0; /* block finished */
    if (done) {
        fail("kernel '%s' block (%u,%u,%u): divergent __syncthreads(): thread (%u,%u,%u) waits at "
             "%s:%d but thread (%u,%u,%u) has exited", L.kernel, SF_B, SF_T(first), first->file,
             first->line, SF_T(done));
        return 0;
    }
    uint64_t count = 0;
    for (unsigned i = 0; i < L.nthreads; i++) count += L.threads[i].val;
    uint64_t res = first->op == 1 ? count : first->op == 2 ? count == L.nthreads : count > 0;
    for (unsigned i = 0; i < L.nthreads; i++) {
        L.threads[i].state = T_RUN;
        L.threads[i].res = res;
    }
    return 1;
}

SF_EMU_NOTSAN static inline void new_round(void)
{
    permute(L.perm, L.nthreads);
    L.pk = 0;
}

SF_EMU_NOTSAN static inline void begin_block(unsigned b)
{
    blockIdx.x = b % gridDim.x;
    blockIdx.y = (b / gridDim.x) % gridDim.y;
    blockIdx.z = b / (gridDim.x * gridDim.y);
    poison_shared();
#ifdef SF_EMU_TSAN
    L.sync_obj = (char *)malloc(64); /* fresh barrier objects: no happens-before across blocks */
    char name[96];
    __tsan_release(L.sync_obj + 40);
    L.nfree = 0;
    for (unsigned i = L.capacity; i-- > 0;) L.free_stacks[L.nfree++] = i;
#endif
    for (unsigned i = 0; i < L.nthreads; i++) {
        Thread *t = &L.threads[i];
        t->state = T_RUN;
        t->sp = nullptr;
#ifdef SF_EMU_TSAN
        t->fiber = __tsan_create_fiber(0);
        snprintf(name, sizeof name, "block (%u,%u,%u) thread (%u,%u,%u)", SF_B, SF_T(t));
        __tsan_set_fiber_name(t->fiber, name);
#endif
    }
    new_round();
}

/* Scheduling rounds of the current block until it finishes or fails. Re-entrant: its
 * position is kept in L, so a scheduler that moved to a fresh stack continues here. */
SF_EMU_NOTSAN static inline void block_loop(void)
{
    for (;;) {
        while (L.pk < L.nthreads && !L.failed) {
            Thread *t = &L.threads[L.perm[L.pk++]];
            if (t->state == T_RUN) run_thread(t);
        }
        if (L.failed) return;
        if (resolve_warps()) {
            if (L.failed) return;
        } else if (!release_barrier()) {
            return;
        }
        new_round();
    }
}

SF_EMU_NOTSAN static inline void end_block(void)
{
    if (!L.failed) check_shared_redzone();
#ifdef SF_EMU_TSAN
    for (unsigned i = 0; i < L.nthreads; i++) __tsan_destroy_fiber(L.threads[i].fiber);
    free(L.sync_obj);
#endif
}

/* All blocks in the configured order (re-entrant like block_loop). */
SF_EMU_NOTSAN static inline void grid_loop(void)
{
    for (;;) {
        if (L.block_active) {
            block_loop();
            end_block();
            L.block_active = 0;
            L.bk++;
        }
        if (L.failed || L.bk >= L.nb) return;
        begin_block(L.bperm[L.bk]);
        L.block_active = 1;
    }
}

#if SF_EMU_DIRECT
/* The scheduler's entry on a fresh stack: at the launch, and whenever a directly
 * running thread blocks (detach). At the end it returns to sf_emu_launch. */
SF_EMU_NOTSAN static void sched_entry(void *)
{
    grid_loop();
    sf_emu_switch(&L.dead_sp, L.launcher_sp);
    __builtin_trap();
}
#endif

static sigjmp_buf fault_jmp;
static volatile void *fault_addr;
static volatile int fault_sig;

static void on_fault(int sig, siginfo_t *si, void *)
{
    fault_addr = si->si_addr;
    fault_sig = sig;
    siglongjmp(fault_jmp, 1);
}

/* Signals a kernel can raise, caught during a launch and reported as KernelError:
 * bad accesses, integer division by zero (no trap on a GPU), traps, assert/abort. */
static const int FAULT_SIGNALS[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
static const int N_FAULT_SIGNALS = 5;

SF_EMU_NOTSAN static inline const char *fault_reason(int sig)
{
    switch (sig) {
    case SIGFPE: return "arithmetic trap (integer division by zero?)";
    case SIGILL: return "illegal instruction (trap)";
    case SIGABRT: return "abort (a failed assert: a device-side assert on a GPU)";
    default: return "invalid memory access";
    }
}

struct FaultGuard {
    struct sigaction old[N_FAULT_SIGNALS];
    stack_t old_ss;
    static char *alt;
    void install()
    {
        if (!alt) alt = (char *)malloc(1 << 16);
        stack_t ss;
        ss.ss_sp = alt;
        ss.ss_size = 1 << 16;
        ss.ss_flags = 0;
        sigaltstack(&ss, &old_ss);
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_fault;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
        sigemptyset(&sa.sa_mask);
        for (int i = 0; i < N_FAULT_SIGNALS; i++) sigaction(FAULT_SIGNALS[i], &sa, &old[i]);
    }
    void restore()
    {
        for (int i = 0; i < N_FAULT_SIGNALS; i++) sigaction(FAULT_SIGNALS[i], &old[i], nullptr);
        sigaltstack(&old_ss, nullptr);
    }
};
char *FaultGuard::alt = nullptr;

#ifdef SF_EMU_TSAN
struct BlockJob {
    unsigned b;
    int done;
};

/* Under TSan each block runs on its own OS thread: its shared memory (TLS) is then a
 * different address range, and the host only waits for it with relaxed atomics, so
 * blocks get no happens-before from each other (only from the host's launch). */
SF_EMU_NOTSAN static void *block_thread(void *arg)
{
    BlockJob *job = (BlockJob *)arg;
    find_tls();
    L.main_fiber = __tsan_get_current_fiber();
    /* fresh stacks for every block: no false races on reused stack memory */
    size_t page = (size_t)sysconf(_SC_PAGESIZE), bytes = (size_t)L.capacity * L.stack_size;
    munmap(L.stacks, bytes);
    void *m = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
        L.stacks = nullptr;
        L.capacity = 0;
        fail("emulator: cannot map thread stacks");
    } else {
        L.stacks = (char *)m;
        for (unsigned i = 0; i < L.capacity; i++) mprotect(L.stacks + (size_t)i * L.stack_size, page, PROT_NONE);
        begin_block(job->b);
        block_loop();
        end_block();
    }
    __tsan_release(&L.end_sync); /* e.g. the error message, read by the host at the end */
    __atomic_store_n(&job->done, 1, __ATOMIC_RELAXED);
    return nullptr;
}

SF_EMU_NOTSAN static inline void run_grid_tsan(void)
{
    for (unsigned k = 0; k < L.nb && !L.failed; k++) {
        BlockJob job = {L.bperm[k], 0};
        pthread_t th;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&th, &attr, block_thread, &job) != 0) {
            fail("emulator: cannot start a thread for block %u", job.b);
            break;
        }
        pthread_attr_destroy(&attr);
        struct timespec nap = {0, 20000}; /* poll (no happens-before, unlike a join) */
        while (!__atomic_load_n(&job.done, __ATOMIC_RELAXED)) nanosleep(&nap, nullptr);
    }
}
#endif

/* Scheduler buffers for n threads and nb blocks (kept between launches). */
SF_EMU_NOTSAN static inline int reserve_order(unsigned n, unsigned nb)
{
    if (n > L.perm_cap) {
        free(L.perm);
        L.perm = (unsigned *)malloc(sizeof(unsigned) * n);
        L.perm_cap = L.perm ? n : 0;
    }
    if (nb > L.bperm_cap) {
        free(L.bperm);
        L.bperm = (unsigned *)malloc(sizeof(unsigned) * nb);
        L.bperm_cap = L.bperm ? nb : 0;
    }
    if (!L.perm || !L.bperm) {
        fail("emulator: out of memory for %u threads x %u blocks", n, nb);
        return -1;
    }
    return 0;
}

} /* namespace sf_emu */

/* Launch `tramp` on a grid. dims = {gx, gy, gz, bx, by, bz}. redzones = (address, length)
 * pairs of the global allocations' redzones, checked after the grid.
 * Returns 0, 1 (kernel error, message in err), 2 (redzone i = info[0] overwritten at
 * byte info[1] of it) or 3 (invalid memory access at info[2], message in err). */
extern "C" SF_EMU_NOTSAN int sf_emu_launch(void (*tramp)(const uint64_t *), const uint64_t *slots,
                                           const char *kernel, const uint32_t *dims, uint64_t shmem,
                                           int order, uint64_t seed, const uint64_t *redzones,
                                           uint64_t nredzones, int64_t *info, char *err,
                                           uint64_t errlen)
{
    using namespace sf_emu;
    L.tramp = tramp;
    L.slots = slots;
    L.kernel = kernel;
    L.err = err;
    L.errlen = errlen;
    L.failed = 0;
    L.order = order;
    L.rng = seed * 0x2545F4914F6CDD1Dull + 0x632BE59BD9B4E019ull;
    L.shmem = shmem;
    gridDim = dim3(dims[0], dims[1], dims[2]);
    blockDim = dim3(dims[3], dims[4], dims[5]);
    L.nthreads = dims[3] * dims[4] * dims[5];
    if (shmem > SF_EMU_DYN_MAX) {
        fail("kernel '%s': shared_mem=%llu bytes exceeds the emulator's limit of %d", kernel,
             (unsigned long long)shmem, SF_EMU_DYN_MAX);
        return 1;
    }
    L.nb = dims[0] * dims[1] * dims[2];
    /* + 1: the scheduler's own stack in direct mode */
    if (reserve_threads(L.nthreads + 1) || reserve_order(L.nthreads, L.nb)) return 1;
    permute(L.bperm, L.nb);
    L.bk = 0;
    L.block_active = 0;
    L.nfree = 0;
    for (unsigned i = L.capacity; i-- > 0;) L.free_stacks[L.nfree++] = i;
    for (unsigned i = 0; i < L.nthreads; i++) {
        Thread *t = &L.threads[i];
        t->lin = i;
        t->tid.x = i % dims[3];
        t->tid.y = (i / dims[3]) % dims[4];
        t->tid.z = i / (dims[3] * dims[4]);
    }
    find_tls();
#ifdef SF_EMU_TSAN
    run_grid_tsan();
    __tsan_acquire(&L.end_sync);
#else
    FaultGuard guard;
    guard.install();
    if (sigsetjmp(fault_jmp, 1)) {
        guard.restore();
        info[2] = (int64_t)(uintptr_t)fault_addr;
        Thread *t = L.cur;
        const char *a = (const char *)fault_addr;
        int on_stack = a >= L.stacks && a < L.stacks + (size_t)L.capacity * L.stack_size;
        snprintf(err, errlen, "kernel '%s' block (%u,%u,%u) thread (%u,%u,%u): %s (signal %d) "
                 "at address %p%s", kernel, SF_B, t ? t->tid.x : 0, t ? t->tid.y : 0,
                 t ? t->tid.z : 0, fault_reason(fault_sig), (int)fault_sig, (void *)fault_addr,
                 on_stack ? " (stack overflow: each emulated thread has a 256 KiB stack)" : "");
        L.cur = nullptr;
        return 3;
    }
    L.cur = nullptr;
#if SF_EMU_DIRECT
    L.sched_stack = L.free_stacks[--L.nfree];
    sf_emu_switch(&L.launcher_sp, context_init(L.sched_stack, &sched_entry, nullptr));
#else
    grid_loop();
#endif
    guard.restore();
#endif
    fflush(stdout); /* device printf appears at the end of the launch, as with CUDA */
    if (L.failed) return 1;
    for (uint64_t i = 0; i < nredzones; i++) {
        int64_t at = find_dirty((const unsigned char *)(uintptr_t)redzones[2 * i], redzones[2 * i + 1]);
        if (at >= 0) {
            info[0] = (int64_t)i;
            info[1] = at;
            return 2;
        }
    }
    return 0;
}

/* Called once when the library is loaded: the static shared variables' redzones
 * (pairs = offset, length within the TLS block; labels = '\0'-separated texts). */
extern "C" SF_EMU_NOTSAN void sf_emu_set_shared_redzones(const uint64_t *pairs, const char *labels,
                                                         uint64_t n)
{
    using namespace sf_emu;
    L.rz_labels = (const char **)realloc(L.rz_labels, sizeof(char *) * (n + 1));
    for (uint64_t i = 0; i < n; i++) {
        L.rz_labels[i] = labels;
        labels += strlen(labels) + 1;
    }
    L.rz_pairs = pairs;
    L.rz_n = n;
}

#endif /* SF_CUDA_EMU_SCHED_H */
