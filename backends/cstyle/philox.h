/* Philox4x32-10 (Salmon et al. 2011) and the draws built on it: the one C
 * implementation shared by the cpu, cuda and fpga backends. Numbers equal
 * spikeforge.philox (NumPy) exactly; see docs/semantics.md for the counter
 * layout. SF_FN sets the function qualifiers of a dialect (static inline for C,
 * __device__ __forceinline__ for CUDA). */
#ifndef SPIKEFORGE_PHILOX_H
#define SPIKEFORGE_PHILOX_H

#ifndef __CUDACC_RTC__ /* NVRTC has no C library headers; the cuda prelude defines the types */
#include <stdint.h>
#include <math.h>
#endif

#ifndef SF_FN
#define SF_FN static inline
#endif

typedef struct { uint32_t w[4]; } sf_words;

SF_FN sf_words sf_philox(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3,
                         uint32_t k0, uint32_t k1)
{
    for (int round = 0; round < 10; round++) {
        if (round > 0) {
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        uint64_t p0 = (uint64_t)0xD2511F53u * c0;
        uint64_t p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c1 = (uint32_t)p1;
        c3 = (uint32_t)p0;
        c0 = n0;
        c2 = n2;
    }
    sf_words out = {{c0, c1, c2, c3}};
    return out;
}

/* u = ((w >> 9) + 1/2) 2^-23: exact in float and double, in (0, 1). */
SF_FN double sf_uniform(uint32_t w) { return ((double)(w >> 9) + 0.5) * 0x1p-23; }

/* Box-Muller in double on two words. */
SF_FN double sf_normal(uint32_t w0, uint32_t w1)
{
    return sqrt(-2.0 * log(sf_uniform(w0))) * cos(2.0 * 3.141592653589793 * sf_uniform(w1));
}

SF_FN double sf_exponential(uint32_t w) { return -log(sf_uniform(w)); }

/* Integer in [0, n): (w n) >> 32. */
SF_FN uint32_t sf_uniform_int(uint32_t w, uint32_t n)
{
    return (uint32_t)(((uint64_t)w * n) >> 32);
}

/* Poisson(lam) by inversion of one uniform, capped at 255 events. */
SF_FN int32_t sf_poisson(uint32_t w, double lam)
{
    double u = sf_uniform(w), p = exp(-lam), cdf = p;
    int32_t k = 0;
    while (u > cdf && k < 255) {
        k++;
        p = p * lam / k;
        cdf = cdf + p;
    }
    return k;
}

/* Initialisers, drawn at counter (attempt, c1, c2, c3) exactly as core/init.py. */
SF_FN double sf_init_uniform(uint32_t seed, uint32_t stream, uint32_t c1, uint32_t c2,
                             uint32_t c3, double low, double diff)
{
    return low + diff * sf_uniform(sf_philox(0u, c1, c2, c3, seed, stream).w[0]);
}

SF_FN double sf_init_normal(uint32_t seed, uint32_t stream, uint32_t c1, uint32_t c2,
                            uint32_t c3, double mean, double sd)
{
    sf_words w = sf_philox(0u, c1, c2, c3, seed, stream);
    return mean + sd * sf_normal(w.w[0], w.w[1]);
}

SF_FN double sf_init_exponential(uint32_t seed, uint32_t stream, uint32_t c1, uint32_t c2,
                                 uint32_t c3, double scale)
{
    return scale * sf_exponential(sf_philox(0u, c1, c2, c3, seed, stream).w[0]);
}

/* Redrawn (c0 = attempt) while outside [low, high], 64 attempts, then clipped. */
SF_FN double sf_init_normal_clipped(uint32_t seed, uint32_t stream, uint32_t c1, uint32_t c2,
                                    uint32_t c3, double mean, double sd, double low, double high)
{
    double x = mean;
    for (uint32_t attempt = 0; attempt < 64; attempt++) {
        sf_words w = sf_philox(attempt, c1, c2, c3, seed, stream);
        x = mean + sd * sf_normal(w.w[0], w.w[1]);
        if (x >= low && x <= high) return x;
    }
    return x < low ? low : (x > high ? high : x);
}

#endif
