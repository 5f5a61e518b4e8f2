/* spikeforge HLS library: the support code of every generated accelerator.
 *
 * Header-only C++ that builds with Vitis HLS and with plain g++ (C simulation).
 * It uses only <stdint.h>-style integer types; no ap_int/ap_fixed, no dynamic
 * memory, no recursion, every loop bounded or annotated with LOOP_TRIPCOUNT.
 *
 *   sf_hls.h       this umbrella: single-"thread" replacements of the OpenMP
 *                  helpers used by the shared C-style emitter, ring-buffer slots
 *   sf_hls_mem.h   burst copies between DDR (m_axi) and on-chip arrays
 *   sf_hls_fixed.h bounded fixed-point helpers (CDF counting for poisson())
 *   philox.h       THE Philox4x32-10 of the project (backends/cstyle/philox.h;
 *                  never mirrored: the build adds its folder to the include path)
 *
 * The neuron update, CSR/dense propagation and delay-ring code of a network is
 * rendered per network by the shared emitter (backends/cstyle) as phase
 * functions over pointer parameters; the top function (backends/fpga/program.py)
 * calls them per timestep on on-chip copies or m_axi ports.
 */
#ifndef SPIKEFORGE_HLS_H
#define SPIKEFORGE_HLS_H

#include <stdint.h>
#include <math.h>
#include <string.h>

#define SF_FN static inline
#include "philox.h"

/* The emitter's OpenMP annotations vanish: the accelerator is one "thread"
 * whose loops HLS pipelines. */
#define SF_OMP(x)

SF_FN int32_t sf_thread(void) { return 0; }
SF_FN int32_t sf_team(void) { return 1; }
SF_FN int64_t sf_lo(int64_t n, int64_t t, int64_t threads) { return n * t / threads; }
SF_FN void sf_range(int64_t n, int64_t *lo, int64_t *hi)
{
    *lo = 0;
    *hi = n;
}

/* Slot of step s in a ring of depth n (delay rings): s mod n in [0, n). */
SF_FN int64_t sf_mod(int64_t a, int64_t n)
{
    int64_t r = a % n;
    return r < 0 ? r + n : r;
}

#include "sf_hls_mem.h"
#include "sf_hls_fixed.h"

#endif
