/* Burst copies between an m_axi port (DDR) and an on-chip array (BRAM/URAM).
 * N is the static element count, so HLS infers one burst of N beats at II=1. */
#ifndef SPIKEFORGE_HLS_MEM_H
#define SPIKEFORGE_HLS_MEM_H

#include <stdint.h>

template <typename T, int64_t N>
static void sf_load(T *dst, const T *src)
{
    for (int64_t i = 0; i < N; i++) {
#pragma HLS PIPELINE II=1
        dst[i] = src[i];
    }
}

template <typename T, int64_t N>
static void sf_store(T *dst, const T *src)
{
    for (int64_t i = 0; i < N; i++) {
#pragma HLS PIPELINE II=1
        dst[i] = src[i];
    }
}

#endif
