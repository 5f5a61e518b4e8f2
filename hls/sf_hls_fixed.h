/* Fixed-point helpers of the accelerator that differ from the cpu emitter's
 * only in being bounded loops (the arithmetic helpers sf_wrap, sf_fx_mul, ...
 * are rendered per network by backends/cstyle/fixed.py with the format baked in).
 *
 * sf_fx_count_n<N>(w, thresholds): poisson(lam) in fixed point, the number of
 * CDF thresholds floor(F(k) 2^32) that the raw word w reaches (N thresholds,
 * ascending), exactly as sf_fx_count of the cpu backend. */
#ifndef SPIKEFORGE_HLS_FIXED_H
#define SPIKEFORGE_HLS_FIXED_H

#include <stdint.h>

template <int N>
static inline int32_t sf_fx_count_n(uint32_t w, const uint64_t *thresholds)
{
    int32_t k = 0;
    for (int i = 0; i < N; i++) {
#pragma HLS UNROLL
        k += (uint64_t)w >= thresholds[i] ? 1 : 0;
    }
    return k;
}

#endif
