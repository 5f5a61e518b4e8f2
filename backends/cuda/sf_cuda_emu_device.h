/* spikeforge CUDA emulation: atomics and device intrinsics (included by sf_cuda_emu.h).
 * Atomics are relaxed __atomic builtins, as CUDA's; float/double add, min/max, inc/dec
 * and float exchange are compare-and-swap loops on the bit pattern. The intrinsics
 * are exact here (approximate on a GPU: __expf, __fdividef, rsqrtf, ...). */
#ifndef SF_CUDA_EMU_DEVICE_H
#define SF_CUDA_EMU_DEVICE_H
/* ---- atomics: relaxed __atomic builtins (real atomic operations) ------------------ */
#define SF_AT_RMW(NAME, BUILTIN, T) \
    static inline T NAME(T *a, T v) { return BUILTIN(a, v, __ATOMIC_RELAXED); }
SF_AT_RMW(atomicAdd, __atomic_fetch_add, int)
SF_AT_RMW(atomicAdd, __atomic_fetch_add, unsigned int)
SF_AT_RMW(atomicAdd, __atomic_fetch_add, unsigned long long)
SF_AT_RMW(atomicSub, __atomic_fetch_sub, int)
SF_AT_RMW(atomicSub, __atomic_fetch_sub, unsigned int)
SF_AT_RMW(atomicOr, __atomic_fetch_or, int)
SF_AT_RMW(atomicOr, __atomic_fetch_or, unsigned int)
SF_AT_RMW(atomicOr, __atomic_fetch_or, unsigned long long)
SF_AT_RMW(atomicAnd, __atomic_fetch_and, int)
SF_AT_RMW(atomicAnd, __atomic_fetch_and, unsigned int)
SF_AT_RMW(atomicAnd, __atomic_fetch_and, unsigned long long)
SF_AT_RMW(atomicXor, __atomic_fetch_xor, int)
SF_AT_RMW(atomicXor, __atomic_fetch_xor, unsigned int)
SF_AT_RMW(atomicXor, __atomic_fetch_xor, unsigned long long)
SF_AT_RMW(atomicExch, __atomic_exchange_n, int)
SF_AT_RMW(atomicExch, __atomic_exchange_n, unsigned int)
SF_AT_RMW(atomicExch, __atomic_exchange_n, unsigned long long)
#undef SF_AT_RMW

#define SF_AT_CAS(T) \
    static inline T atomicCAS(T *a, T cmp, T v) \
    { __atomic_compare_exchange_n(a, &cmp, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED); return cmp; }
SF_AT_CAS(int)
SF_AT_CAS(unsigned int)
SF_AT_CAS(unsigned long long)
SF_AT_CAS(unsigned short)
#undef SF_AT_CAS

/* read-modify-write through a compare-and-swap loop on the bit pattern */
template <class T, class B, class F> static inline T sf_emu_cas_loop(T *a, F f)
{
    B *p = (B *)a, old = __atomic_load_n(p, __ATOMIC_RELAXED), nw;
    do {
        T cur, next;
        memcpy(&cur, &old, sizeof(T));
        next = f(cur);
        memcpy(&nw, &next, sizeof(T));
    } while (!__atomic_compare_exchange_n(p, &old, nw, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    T r;
    memcpy(&r, &old, sizeof(T));
    return r;
}
static inline float atomicAdd(float *a, float v) { return sf_emu_cas_loop<float, uint32_t>(a, [v](float c) { return c + v; }); }
static inline double atomicAdd(double *a, double v) { return sf_emu_cas_loop<double, uint64_t>(a, [v](double c) { return c + v; }); }
static inline float atomicExch(float *a, float v) { return sf_emu_cas_loop<float, uint32_t>(a, [v](float) { return v; }); }
#define SF_AT_MINMAX(T, B) \
    static inline T atomicMax(T *a, T v) { return sf_emu_cas_loop<T, B>(a, [v](T c) { return c > v ? c : v; }); } \
    static inline T atomicMin(T *a, T v) { return sf_emu_cas_loop<T, B>(a, [v](T c) { return c < v ? c : v; }); }
SF_AT_MINMAX(int, uint32_t)
SF_AT_MINMAX(unsigned int, uint32_t)
SF_AT_MINMAX(long long, uint64_t)
SF_AT_MINMAX(unsigned long long, uint64_t)
#undef SF_AT_MINMAX
static inline unsigned int atomicInc(unsigned int *a, unsigned int m)
{ return sf_emu_cas_loop<unsigned int, uint32_t>(a, [m](unsigned int c) { return c >= m ? 0u : c + 1u; }); }
static inline unsigned int atomicDec(unsigned int *a, unsigned int m)
{ return sf_emu_cas_loop<unsigned int, uint32_t>(a, [m](unsigned int c) { return (c == 0u || c > m) ? m : c - 1u; }); }

static inline void __threadfence(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
static inline void __threadfence_block(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
template <class T> static inline T __ldg(const T *p) { return *p; }

/* ---- integer and bit intrinsics -------------------------------------------------- */
static inline int __popc(unsigned int x) { return __builtin_popcount(x); }
static inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
static inline int __ffs(int x) { return __builtin_ffs(x); }
static inline int __ffsll(long long x) { return __builtin_ffsll(x); }
static inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz((unsigned)x); }
static inline int __clzll(long long x) { return x == 0 ? 64 : __builtin_clzll((unsigned long long)x); }
static inline unsigned int __brev(unsigned int x)
{
    unsigned r = 0;
    for (int i = 0; i < 32; i++) r |= ((x >> i) & 1u) << (31 - i);
    return r;
}
static inline unsigned int __umulhi(unsigned int a, unsigned int b) { return (unsigned)(((uint64_t)a * b) >> 32); }
static inline int __mulhi(int a, int b) { return (int)(((int64_t)a * b) >> 32); }
static inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b)
{ return (unsigned long long)(((unsigned __int128)a * b) >> 64); }

/* ---- reinterpretation and float intrinsics (exact here; approximate on a GPU) ------ */
static inline float __int_as_float(int x) { float f; memcpy(&f, &x, 4); return f; }
static inline int __float_as_int(float x) { int i; memcpy(&i, &x, 4); return i; }
static inline float __uint_as_float(unsigned int x) { float f; memcpy(&f, &x, 4); return f; }
static inline unsigned int __float_as_uint(float x) { unsigned i; memcpy(&i, &x, 4); return i; }
static inline double __longlong_as_double(long long x) { double d; memcpy(&d, &x, 8); return d; }
static inline long long __double_as_longlong(double x) { long long i; memcpy(&i, &x, 8); return i; }
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline double rsqrt(double x) { return 1.0 / sqrt(x); }
#define __expf(x) expf(x)
#define __logf(x) logf(x)
#define __sinf(x) sinf(x)
#define __cosf(x) cosf(x)
#define __powf(a, b) powf(a, b)
static inline float __fdividef(float a, float b) { return a / b; }
static inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : (x == x ? x : 0.0f)); }

/* explicitly rounded arithmetic (round-to-nearest: the CPU's default mode; these are
 * never contracted into a fused multiply-add, here or by nvcc) and conversions */
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fdiv_rn(float a, float b) { return a / b; }
static inline float __frcp_rn(float a) { return 1.0f / a; }
static inline float __fsqrt_rn(float a) { return sqrtf(a); }
static inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
static inline double __dadd_rn(double a, double b) { return a + b; }
static inline double __dsub_rn(double a, double b) { return a - b; }
static inline double __dmul_rn(double a, double b) { return a * b; }
static inline double __ddiv_rn(double a, double b) { return a / b; }
static inline double __dsqrt_rn(double a) { return sqrt(a); }
static inline double __fma_rn(double a, double b, double c) { return fma(a, b, c); }
static inline int __float2int_rn(float x) { return (int)nearbyintf(x); }
static inline int __float2int_rz(float x) { return (int)x; }
static inline int __float2int_rd(float x) { return (int)floorf(x); }
static inline int __float2int_ru(float x) { return (int)ceilf(x); }
static inline unsigned int __float2uint_rn(float x) { return (unsigned int)nearbyintf(x); }
static inline long long __float2ll_rn(float x) { return (long long)nearbyintf(x); }
static inline int __double2int_rn(double x) { return (int)nearbyint(x); }
static inline int __double2int_rz(double x) { return (int)x; }
static inline long long __double2ll_rn(double x) { return (long long)nearbyint(x); }
static inline float __double2float_rn(double x) { return (float)x; }
static inline float __int2float_rn(int x) { return (float)x; }
static inline float __uint2float_rn(unsigned int x) { return (float)x; }
static inline float __ll2float_rn(long long x) { return (float)x; }
static inline double __int2double_rn(int x) { return (double)x; }
static inline double __ll2double_rn(long long x) { return (double)x; }

/* CUDA's global min/max overloads (mixed signedness promotes to unsigned, as in CUDA) */
#define SF_MINMAX(R, A, B) \
    static inline R min(A a, B b) { return (R)a < (R)b ? (R)a : (R)b; } \
    static inline R max(A a, B b) { return (R)a > (R)b ? (R)a : (R)b; }
SF_MINMAX(int, int, int)
SF_MINMAX(unsigned int, unsigned int, unsigned int)
SF_MINMAX(unsigned int, int, unsigned int)
SF_MINMAX(unsigned int, unsigned int, int)
SF_MINMAX(long long, long long, long long)
SF_MINMAX(unsigned long long, unsigned long long, unsigned long long)
SF_MINMAX(unsigned long long, long long, unsigned long long)
SF_MINMAX(unsigned long long, unsigned long long, long long)
static inline float min(float a, float b) { return fminf(a, b); }
static inline float max(float a, float b) { return fmaxf(a, b); }
static inline double min(double a, double b) { return fmin(a, b); }
static inline double max(double a, double b) { return fmax(a, b); }
static inline double min(float a, double b) { return fmin(a, b); }
static inline double max(float a, double b) { return fmax(a, b); }
static inline double min(double a, float b) { return fmin(a, b); }
static inline double max(double a, float b) { return fmax(a, b); }
#undef SF_MINMAX

#endif /* SF_CUDA_EMU_DEVICE_H */
