"""The ``cuda`` dialect of the C-style emitter: CUDA C++ for NVRTC, nvcc and the
project's emulation header (g++).

Differences from C are spellings only: device function qualifiers,
``__restrict__``, and a prelude that works without the C library headers under
NVRTC (``__CUDACC_RTC__``), where <stdint.h> does not exist.
"""

from spikeforge.backends.cstyle.render import Dialect

PRELUDE = """\
#ifdef __CUDACC_RTC__
typedef signed char int8_t;
typedef short int16_t;
typedef int int32_t;
typedef long long int64_t;
typedef unsigned char uint8_t;
typedef unsigned short uint16_t;
typedef unsigned int uint32_t;
typedef unsigned long long uint64_t;
#define INT64_C(x) x##LL
#define INFINITY __int_as_float(0x7f800000)
#else
#include <stdint.h>
#include <math.h>
#endif
#ifndef SF_FN
#define SF_FN static __device__ __forceinline__
#endif"""


class CudaDialect(Dialect):
    """CUDA C++: device helpers are ``static __device__ __forceinline__``."""

    name = "cuda"
    prelude = PRELUDE
    fn_qualifier = "static __device__ __forceinline__"
    restrict = "__restrict__"
    kernel_qualifier = 'extern "C" __global__'
    global_qualifier = "static __device__"  # file-scope tables read by kernels
