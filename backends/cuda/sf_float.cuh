/* float32 draws for CUDA kernels without double precision (docs/cuda.md).
 *
 * The reference computes normal() and exponential() in float64 and rounds to
 * float32. Here the same formulas run in float-float arithmetic (an unevaluated
 * sum hi + lo of two floats, about 44 bits; products exact through fmaf), so
 * the float32 result equals the reference's except when the exact value lies
 * within ~1e-13 (relative) of a float rounding boundary. Only float operations:
 * the PTX has no .f64 instruction. This text is pasted into the generated
 * source by backends/cuda/program.py when a kernel draws normal, exponential or
 * Poisson numbers or initialises procedural synapses (kernels include only
 * philox.h); sf_uniform_f comes before it. */

typedef struct { float hi, lo; } sf_ff;

SF_FN sf_ff sf_ff_make(float hi, float lo) { sf_ff r; r.hi = hi; r.lo = lo; return r; }

/* |a| >= |b| or a == 0: hi = fl(a + b), lo = the rounding error. */
SF_FN sf_ff sf_ff_fast(float a, float b) { float s = a + b; return sf_ff_make(s, b - (s - a)); }

SF_FN sf_ff sf_ff_sum(float a, float b)
{
    float s = a + b, bb = s - a;
    return sf_ff_make(s, (a - (s - bb)) + (b - bb));
}

SF_FN sf_ff sf_ff_prod(float a, float b) { float p = a * b; return sf_ff_make(p, fmaf(a, b, -p)); }

SF_FN sf_ff sf_ff_add(sf_ff a, sf_ff b)
{
    sf_ff s = sf_ff_sum(a.hi, b.hi);
    return sf_ff_fast(s.hi, s.lo + (a.lo + b.lo));
}

SF_FN sf_ff sf_ff_mul(sf_ff a, sf_ff b)
{
    sf_ff p = sf_ff_prod(a.hi, b.hi);
    return sf_ff_fast(p.hi, p.lo + (a.hi * b.lo + a.lo * b.hi));
}

SF_FN sf_ff sf_ff_mul_f(sf_ff a, float b)
{
    sf_ff p = sf_ff_prod(a.hi, b);
    return sf_ff_fast(p.hi, p.lo + a.lo * b);
}

SF_FN sf_ff sf_ff_div(sf_ff a, sf_ff b)
{
    float q1 = a.hi / b.hi;
    sf_ff p = sf_ff_mul_f(b, q1);
    float r = ((a.hi - p.hi) - p.lo) + a.lo;
    return sf_ff_fast(q1, r / b.hi);
}

SF_FN sf_ff sf_ff_sqrt(sf_ff a)
{
    float y = sqrtf(a.hi);
    sf_ff p = sf_ff_prod(y, y);
    return sf_ff_fast(y, (((a.hi - p.hi) - p.lo) + a.lo) / (2.0f * y));
}

static __device__ const float sf_ff_atanh[10][2] = {  /* 2 / (2k + 1) */
    {0x1p+1f, 0.0f}, {0x1.555556p-1f, -0x1.555556p-26f}, {0x1.99999ap-2f, -0x1.99999ap-28f},
    {0x1.24924ap-2f, -0x1.b6db6ep-27f}, {0x1.c71c72p-3f, -0x1.c71c72p-30f},
    {0x1.745d18p-3f, -0x1.745d18p-28f}, {0x1.3b13b2p-3f, -0x1.89d89ep-28f},
    {0x1.111112p-3f, -0x1.dddddep-28f}, {0x1.e1e1e2p-4f, -0x1.e1e1e2p-32f},
    {0x1.af286cp-4f, -0x1.af286cp-31f}};
static __device__ const float sf_ff_cos_c[10][2] = {  /* (-1)^k / (2k)! */
    {0x1p+0f, 0.0f}, {-0x1p-1f, 0.0f}, {0x1.555556p-5f, -0x1.555556p-30f},
    {-0x1.6c16c2p-10f, 0x1.27d27ep-35f}, {0x1.a01a02p-16f, -0x1.7f97fap-42f},
    {-0x1.27e4fcp-22f, 0x1.10ec14p-47f}, {0x1.1eed8ep-29f, 0x1.ff1b12p-54f},
    {-0x1.93974ap-37f, -0x1.180f94p-62f}, {0x1.ae7f3ep-45f, 0x1.ccee08p-71f},
    {-0x1.682786p-53f, -0x1.dcbeccp-80f}};
static __device__ const float sf_ff_sin_c[10][2] = {  /* (-1)^k / (2k+1)! */
    {0x1p+0f, 0.0f}, {-0x1.555556p-3f, 0x1.555556p-28f}, {0x1.111112p-7f, -0x1.dddddep-32f},
    {-0x1.a01a02p-13f, 0x1.7f97fap-39f}, {0x1.71de3ap-19f, 0x1.55b1ccp-45f},
    {-0x1.ae6456p-26f, -0x1.fd5138p-52f}, {0x1.612462p-33f, -0x1.8af25ep-58f},
    {-0x1.ae7f3ep-41f, -0x1.ccee08p-67f}, {0x1.952c78p-49f, -0x1.f9ea56p-74f},
    {-0x1.2f49b4p-57f, -0x1.a05056p-83f}};

static __device__ const float sf_ff_exp_c[14][2] = {  /* 1 / n! */
    {0x1p+0f, 0.0f}, {0x1p+0f, 0.0f}, {0x1p-1f, 0.0f}, {0x1.555556p-3f, -0x1.555556p-28f},
    {0x1.555556p-5f, -0x1.555556p-30f}, {0x1.111112p-7f, -0x1.dddddep-32f},
    {0x1.6c16c2p-10f, -0x1.27d27ep-35f}, {0x1.a01a02p-13f, -0x1.7f97fap-39f},
    {0x1.a01a02p-16f, -0x1.7f97fap-42f}, {0x1.71de3ap-19f, 0x1.55b1ccp-45f},
    {0x1.27e4fcp-22f, -0x1.10ec14p-47f}, {0x1.ae6456p-26f, 0x1.fd5138p-52f},
    {0x1.1eed8ep-29f, 0x1.ff1b12p-54f}, {0x1.612462p-33f, -0x1.8af25ep-58f}};

/* sum_{k<n} c[k] x^k by Horner, in float-float. */
SF_FN sf_ff sf_ff_poly(const float (*c)[2], int n, sf_ff x)
{
    sf_ff p = sf_ff_make(c[n - 1][0], c[n - 1][1]);
    for (int k = n - 2; k >= 0; k--)
        p = sf_ff_add(sf_ff_mul(p, x), sf_ff_make(c[k][0], c[k][1]));
    return p;
}

/* ln u for a positive normal float: u = 2^e f, f in [sqrt(1/2), sqrt(2)],
   ln f = 2 atanh(s) with s = (f - 1) / (f + 1), |s| < 0.172. */
SF_FN sf_ff sf_ff_log(float u)
{
    const uint32_t bits = __float_as_uint(u);
    int e = (int)((bits >> 23) & 0xffu) - 127;
    float f = __uint_as_float((bits & 0x007fffffu) | 0x3f800000u);
    if (f > 1.41421356f) { f = 0.5f * f; e += 1; }
    sf_ff s = sf_ff_div(sf_ff_make(f - 1.0f, 0.0f), sf_ff_sum(f, 1.0f));
    sf_ff r = sf_ff_mul(sf_ff_poly(sf_ff_atanh, 10, sf_ff_mul(s, s)), s);
    return sf_ff_add(sf_ff_mul_f(sf_ff_make(0x1.62e430p-1f, -0x1.05c610p-29f), (float)e), r);
}

/* cos(2 pi u) for u in [0, 1]: u = q/4 + r exactly, |r| <= 1/8, x = 2 pi r. */
SF_FN sf_ff sf_ff_cos2pi(float u)
{
    const float q = rintf(4.0f * u), r = u - 0.25f * q;
    const sf_ff x = sf_ff_mul_f(sf_ff_make(0x1.921fb6p+2f, -0x1.777a5cp-23f), r);
    const sf_ff x2 = sf_ff_mul(x, x);
    const int quadrant = (int)q & 3;
    sf_ff v = (quadrant & 1) ? sf_ff_mul(sf_ff_poly(sf_ff_sin_c, 10, x2), x)
                             : sf_ff_poly(sf_ff_cos_c, 10, x2);
    if (quadrant == 1 || quadrant == 2) v = sf_ff_make(-v.hi, -v.lo);
    return v;  /* quadrant 1: -sin x, 2: -cos x, 3: sin x */
}

/* e^-lam for lam < 80 (beyond, float's exponent range ends): 2^k e^r, |r| <= ln2/2. */
SF_FN sf_ff sf_ff_exp_neg(float lam)
{
    const float k = rintf(-lam * 1.44269504f);
    const sf_ff r = sf_ff_add(sf_ff_make(-lam, 0.0f),
                              sf_ff_mul_f(sf_ff_make(-0x1.62e430p-1f, 0x1.05c610p-29f), k));
    const sf_ff e = sf_ff_poly(sf_ff_exp_c, 14, r);
    const float scale = __int_as_float(((int)k + 127) << 23);  /* 2^k, k in [-126, 127] */
    return sf_ff_make(e.hi * scale, e.lo * scale);
}

/* Poisson(lam) by inversion of one uniform, capped at 255 events, as the
   reference: the smallest k with u <= sum_{i<=k} e^-lam lam^i / i!. */
SF_FN int32_t sf_poisson_f(uint32_t w, float lam)
{
    const float u = sf_uniform_f(w);
    sf_ff p = sf_ff_exp_neg(lam), cdf = p;
    int32_t k = 0;
    while ((cdf.hi < u || (cdf.hi == u && cdf.lo < 0.0f)) && k < 255) {
        k++;
        p = sf_ff_div(sf_ff_mul_f(p, lam), sf_ff_make((float)k, 0.0f));
        cdf = sf_ff_add(cdf, p);
    }
    return k;
}

/* Box-Muller on two words: sqrt(-2 ln u0) cos(2 pi u1). */
SF_FN sf_ff sf_normal_ff(sf_words w)
{
    sf_ff l = sf_ff_log(sf_uniform_f(w.w[0]));
    sf_ff radius = sf_ff_sqrt(sf_ff_make(-2.0f * l.hi, -2.0f * l.lo));
    return sf_ff_mul(radius, sf_ff_cos2pi(sf_uniform_f(w.w[1])));
}

SF_FN float sf_normal_f(sf_words w) { return sf_normal_ff(w).hi; }

SF_FN sf_ff sf_exponential_ff(uint32_t w)
{
    sf_ff l = sf_ff_log(sf_uniform_f(w));
    return sf_ff_make(-l.hi, -l.lo);
}

SF_FN float sf_exponential_f(uint32_t w) { return sf_exponential_ff(w).hi; }

/* A double constant of the generated code as float-float. Only ever called with
   literals (procedural initialisers), which the compiler folds: no .f64 remains
   (the build's PTX check verifies it). */
SF_FN sf_ff sf_ff_const(double x)
{
    const float hi = (float)x;
    return sf_ff_make(hi, (float)(x - (double)hi));
}

/* Initialisers of procedural synapse vars, as core/init.py (float64, rounded once). */
SF_FN float sf_initf_uniform(uint32_t seed, uint32_t stream, uint32_t c1, uint32_t c2,
                             uint32_t c3, double low, double diff)
{
    const float u = sf_uniform_f(sf_philox(0u, c1, c2, c3, seed, stream).w[0]);
    return sf_ff_add(sf_ff_const(low), sf_ff_mul_f(sf_ff_const(diff), u)).hi;
}

SF_FN float sf_initf_normal(uint32_t seed, uint32_t stream, uint32_t c1, uint32_t c2,
                            uint32_t c3, double mean, double sd)
{
    const sf_ff z = sf_normal_ff(sf_philox(0u, c1, c2, c3, seed, stream));
    return sf_ff_add(sf_ff_const(mean), sf_ff_mul(sf_ff_const(sd), z)).hi;
}

SF_FN float sf_initf_exponential(uint32_t seed, uint32_t stream, uint32_t c1, uint32_t c2,
                                 uint32_t c3, double scale)
{
    const sf_ff e = sf_exponential_ff(sf_philox(0u, c1, c2, c3, seed, stream).w[0]);
    return sf_ff_mul(sf_ff_const(scale), e).hi;
}

/* Redrawn (c0 = attempt) while outside [low, high], 64 attempts, then clipped. */
SF_FN float sf_initf_normal_clipped(uint32_t seed, uint32_t stream, uint32_t c1, uint32_t c2,
                                    uint32_t c3, double mean, double sd, float low, float high)
{
    sf_ff x = sf_ff_const(mean);
    for (uint32_t attempt = 0; attempt < 64; attempt++) {
        const sf_ff z = sf_normal_ff(sf_philox(attempt, c1, c2, c3, seed, stream));
        x = sf_ff_add(sf_ff_const(mean), sf_ff_mul(sf_ff_const(sd), z));
        if (x.hi >= low && x.hi <= high) return x.hi;
    }
    return x.hi < low ? low : (x.hi > high ? high : x.hi);
}
