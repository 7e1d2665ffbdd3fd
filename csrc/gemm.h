/* fastnn's own single-precision GEMM, header-only:  C = alpha op(A) op(B) + beta C, all row-major.

   Legend: op(A) is M x K, op(B) is K x N, C is M x N; op(X) = X or X^T (trans_a / trans_b).

   Blocking (the BLIS/Goto scheme):
     - K is cut into blocks of at most FNN_KC (equal sizes, the last may be shorter: a function of K only).
     - C's columns are cut into blocks of at most FNN_NCB. For each column block, op(B) is packed a B block at
       a time -- as many K blocks as fit in FNN_B_FLOATS (all of K for the narrow products of an MLP) -- into
       NR-column panels (b[k * NR + j], zero past N), shared by the threads.
     - Each thread owns a range of C's rows (in MR-row panels; when there are fewer panels than threads, the
       columns are split too) and walks it an A block (FNN_MC rows) at a time: for each K block of the B
       block, it packs the A block into MR-row panels (a[k * MR + i]) -- or reads op(A) in place when each
       panel is used once -- and the micro-kernel adds one A panel times one B panel into one MR x NR
       micro-tile of C. All K blocks of a B block run back to back on one tile of C, which stays in cache.
   Threads (OpenMP, one parallel region per call), two ways of sharing C -- the index that owns the memory
   written: no atomics, no reductions (fnn_split_cols picks):
     - by columns: each thread computes its own NR-column panels of C as a 1-thread product with its own packed
       buffers: no barrier at all;
     - by rows: all pack the shared B block (a barrier before and after), then each computes its own rows of C.
   fnn_sgemm_part gives a caller that owns the parallel region (the training step) one thread's share, split the
   same ways, with no barrier inside.
   Same bits whatever the thread count: every element of C is computed as
       for each K block q in order:  c = alpha * (sum over k in q, in order, of a_ik b_kj) + beta_q * c
   (beta_0 = beta, then 1) by the same micro-kernel code, because the micro-tile grid (from C's origin) and the
   K blocks depend only on M, N, K -- never on the thread count, which only decides who computes which tile.
   The bits do depend on the CPU path (FMA or not), as with any BLAS.

   Hooks, for fusing work into the passes that already touch the data:
     - prep(ctx, k0, kn, j0, n) runs just before rows [k0, k0+kn) x columns [j0, j0+n) of op(B) are read
       for packing (at most FNN_NC columns at a time), once for each element, in increasing k0 for a given
       column, never concurrently for one column. It may write op(B)'s memory there (dZ = dY f'(Z)).
     - epi(ctx, C + i0 * ldc + j0, ldc, i0, j0, m, n) runs on each finished tile of C (all K blocks done; at
       most FNN_MC x FNN_NC, still in cache), by the thread that owns it.

   CPU dispatch: the micro-kernel is chosen once, at fnn_gemm_init(), from what the CPU supports --
   AVX-512F, else AVX2+FMA (intrinsics in functions compiled with __attribute__((target)), so the rest of the
   extension stays baseline x86-64), else the portable one (generic 4-float vectors: SSE2 on any x86-64, NEON on
   aarch64; plain loops for MSVC). FASTNN_CPU=portable forces the portable kernel, FASTNN_CPU=avx2 the AVX2
   one. All three take the same packed panels (MR x NR = 6 x 16), so only the micro-kernel differs.
   Each extension that includes this header has its own copy of the (static) choice; all read the same
   environment, so they agree. */
#ifndef FASTNN_GEMM_H
#define FASTNN_GEMM_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "fastnn_omp.h"

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define FNN_HAVE_AVX2 1
#include <immintrin.h>
#else
#define FNN_HAVE_AVX2 0
#endif

#if defined(__SSE2__) || defined(_M_X64) || defined(_M_AMD64)
#define FNN_HAVE_SSE2 1       /* the x86-64 baseline: 4 x 4 transposes for packing */
#include <emmintrin.h>
#else
#define FNN_HAVE_SSE2 0
#endif

#if defined(_MSC_VER)
#define FNN_RESTRICT __restrict
#else
#define FNN_RESTRICT __restrict__
#endif

/* Blocking (tuned on Zen 3: 32 KB L1d, 512 KB L2 per core; bench/GEMM.md). The #ifndef lets a tuning build
   try others (CFLAGS=-DFNN_KC=...); MR and NR are fixed by the micro-kernels. */
#define FNN_MR 6            /* micro-tile rows: 6 x 16 floats = 12 AVX2 accumulators, + 2 for B, + 1 broadcast */
#define FNN_NR 16           /* micro-tile columns */
#ifndef FNN_KC
#define FNN_KC 256          /* K block: a B panel (16 KB) stays in L1 while A panels (6 KB) stream past it */
#endif
#ifndef FNN_MC
#define FNN_MC 144          /* rows of an A block: 144 x 256 floats (147 KB) stay in L2 */
#endif
#ifndef FNN_NC
#define FNN_NC 256          /* columns per epilogue tile (and per prep call): 144 x 256 floats stay in L2 */
#endif
#ifndef FNN_NCB
#define FNN_NCB 4096        /* columns of a packed B block */
#endif
#ifndef FNN_B_FLOATS
#define FNN_B_FLOATS (1 << 20)  /* a packed B block holds as many K blocks as fit in 4 MB (L3): all of K for
                                   narrow products, so each tile of C stays in cache across K */
#endif
#define FNN_STACK_FLOATS 8192   /* packed buffers up to 32 KB live on the stack: no malloc for small products */

typedef void (*fnn_prep_fn)(void *ctx, int k0, int kn, int j0, int n);
typedef void (*fnn_epi_fn)(void *ctx, float *C, ptrdiff_t ldc, int i0, int j0, int m, int n);
/* c[MR x NR] (row stride ldc) = alpha * sum_k a(:, k) b(k, :) + beta * c, c not read when beta == 0.
   a(r, k) = a[r * rs + k * cs]: a packed panel (rs = 1, cs = MR) or MR rows of op(A) in place;
   b(k, j) = b[k * NR + j]: a packed panel. */
typedef void (*fnn_ukr_fn)(int kc, const float *a, ptrdiff_t rs, ptrdiff_t cs, const float *b, float *c,
                           ptrdiff_t ldc, float alpha, float beta);


/* ---- micro-kernels ---- */

/* The portable kernel: GCC/clang generic vectors of 4 floats (SSE2 on any x86-64, NEON on aarch64), in two
   6 x 8 halves so that the 12 accumulators, 2 B vectors and 1 broadcast fit the 16 registers of SSE2;
   plain loops elsewhere (MSVC). */
#if defined(__GNUC__) || defined(__clang__)
typedef float fnn_v4 __attribute__((vector_size(16)));
#if defined(__aarch64__)    /* the build has -ffp-contract=off, so the accumulation asks for NEON's FMA itself */
#include <arm_neon.h>
#define FNN_V4_FMA(c, a, b) ((fnn_v4)vfmaq_f32((float32x4_t)(c), (float32x4_t)(a), (float32x4_t)(b)))
#else
#define FNN_V4_FMA(c, a, b) ((c) + (a) * (b))
#endif

static inline fnn_v4 fnn_v4_load(const float *p) { fnn_v4 v; memcpy(&v, p, sizeof v); return v; }
static inline void fnn_v4_store(float *p, fnn_v4 v) { memcpy(p, &v, sizeof v); }

#define FNN_V4_ROW(r)                                                     \
    ai = (fnn_v4){a[(r) * rs], a[(r) * rs], a[(r) * rs], a[(r) * rs]};    \
    c##r##0 = FNN_V4_FMA(c##r##0, ai, b0);                                \
    c##r##1 = FNN_V4_FMA(c##r##1, ai, b1);
#define FNN_V4_STORE(r)                                                                            \
    if (beta == 0.0f) {                                                                            \
        fnn_v4_store(c + (r) * ldc + h, va * c##r##0);                                             \
        fnn_v4_store(c + (r) * ldc + h + 4, va * c##r##1);                                         \
    } else {                                                                                       \
        fnn_v4_store(c + (r) * ldc + h, va * c##r##0 + vb * fnn_v4_load(c + (r) * ldc + h));       \
        fnn_v4_store(c + (r) * ldc + h + 4, va * c##r##1 + vb * fnn_v4_load(c + (r) * ldc + h + 4)); \
    }

static void fnn_ukr_portable(int kc, const float *FNN_RESTRICT a0, ptrdiff_t rs, ptrdiff_t cs,
                             const float *FNN_RESTRICT b0_, float *FNN_RESTRICT c, ptrdiff_t ldc, float alpha,
                             float beta)
{
    const fnn_v4 va = {alpha, alpha, alpha, alpha}, vb = {beta, beta, beta, beta};
    int h, k;
    for (h = 0; h < FNN_NR; h += 8) {
        const float *a = a0, *b = b0_ + h;
        fnn_v4 c00 = {0, 0, 0, 0}, c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
        fnn_v4 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
        fnn_v4 ai, b0, b1;
        for (k = 0; k < kc; k++, a += cs, b += FNN_NR) {
            b0 = fnn_v4_load(b);
            b1 = fnn_v4_load(b + 4);
            FNN_V4_ROW(0) FNN_V4_ROW(1) FNN_V4_ROW(2) FNN_V4_ROW(3) FNN_V4_ROW(4) FNN_V4_ROW(5)
        }
        FNN_V4_STORE(0) FNN_V4_STORE(1) FNN_V4_STORE(2) FNN_V4_STORE(3) FNN_V4_STORE(4) FNN_V4_STORE(5)
    }
}
#undef FNN_V4_ROW
#undef FNN_V4_STORE
#undef FNN_V4_FMA
#else
static void fnn_ukr_portable(int kc, const float *FNN_RESTRICT a, ptrdiff_t rs, ptrdiff_t cs,
                             const float *FNN_RESTRICT b, float *FNN_RESTRICT c, ptrdiff_t ldc, float alpha,
                             float beta)
{
    float acc[FNN_MR][FNN_NR];
    int i, j, k;
    for (i = 0; i < FNN_MR; i++)
        for (j = 0; j < FNN_NR; j++)
            acc[i][j] = 0.0f;
    for (k = 0; k < kc; k++, a += cs, b += FNN_NR)
        for (i = 0; i < FNN_MR; i++) {
            const float ai = a[i * rs];
            for (j = 0; j < FNN_NR; j++)
                acc[i][j] += ai * b[j];
        }
    for (i = 0; i < FNN_MR; i++, c += ldc)
        for (j = 0; j < FNN_NR; j++)
            c[j] = beta == 0.0f ? alpha * acc[i][j] : alpha * acc[i][j] + beta * c[j];
}
#endif

#if FNN_HAVE_AVX2
#define FNN_AVX2_ROW(r)                                                   \
    ai = _mm256_broadcast_ss(a##r + off);                                 \
    c##r##0 = _mm256_fmadd_ps(ai, b0, c##r##0);                           \
    c##r##1 = _mm256_fmadd_ps(ai, b1, c##r##1);
#define FNN_AVX2_STEP                                                     \
    b0 = _mm256_loadu_ps(b);     /* unaligned: B read in place */         \
    b1 = _mm256_loadu_ps(b + 8);                                          \
    FNN_AVX2_ROW(0) FNN_AVX2_ROW(1) FNN_AVX2_ROW(2)                       \
    FNN_AVX2_ROW(3) FNN_AVX2_ROW(4) FNN_AVX2_ROW(5)                       \
    off += cs;                                                            \
    b += FNN_NR;
#define FNN_AVX2_STORE(r)                                                                          \
    if (beta == 0.0f) {                                                                            \
        _mm256_storeu_ps(c + (r) * ldc, _mm256_mul_ps(va, c##r##0));                               \
        _mm256_storeu_ps(c + (r) * ldc + 8, _mm256_mul_ps(va, c##r##1));                           \
    } else {                                                                                       \
        _mm256_storeu_ps(c + (r) * ldc,                                                            \
                         _mm256_fmadd_ps(vb, _mm256_loadu_ps(c + (r) * ldc), _mm256_mul_ps(va, c##r##0)));    \
        _mm256_storeu_ps(c + (r) * ldc + 8,                                                        \
                         _mm256_fmadd_ps(vb, _mm256_loadu_ps(c + (r) * ldc + 8), _mm256_mul_ps(va, c##r##1))); \
    }

__attribute__((target("avx2,fma")))
static void fnn_ukr_avx2(int kc, const float *FNN_RESTRICT a, ptrdiff_t rs, ptrdiff_t cs,
                         const float *FNN_RESTRICT b, float *FNN_RESTRICT c, ptrdiff_t ldc, float alpha,
                         float beta)
{
    const float *a0 = a, *a1 = a + rs, *a2 = a + 2 * rs, *a3 = a + 3 * rs, *a4 = a + 4 * rs, *a5 = a + 5 * rs;
    ptrdiff_t off = 0;
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    __m256 b0, b1, ai, va, vb;
    int k, r;
    for (r = 0; r < FNN_MR; r++)        /* C is needed only at the end: start fetching it now */
        _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
    for (k = 0; k < kc; k++) {          /* not unrolled: GCC then spills accumulators (16 ymm registers) */
        FNN_AVX2_STEP
    }
    va = _mm256_set1_ps(alpha);
    vb = _mm256_set1_ps(beta);
    FNN_AVX2_STORE(0) FNN_AVX2_STORE(1) FNN_AVX2_STORE(2)
    FNN_AVX2_STORE(3) FNN_AVX2_STORE(4) FNN_AVX2_STORE(5)
}
#undef FNN_AVX2_ROW
#undef FNN_AVX2_STEP
#undef FNN_AVX2_STORE

/* AVX-512: one 16-float zmm register per row of the micro-tile. Six accumulators would leave the FMA units
   waiting on their own latency (4 cycles x 2 units needs 8 chains), so even k go to one set and odd k to a
   second, added at the end: 12 chains. The sums' order is a function of kc only (the same bits on any thread
   count), not the AVX2 kernel's order. */
#define FNN_AVX512_ROW(r)                                                               \
    e##r = _mm512_fmadd_ps(_mm512_set1_ps(a##r[off]), b0, e##r);                        \
    o##r = _mm512_fmadd_ps(_mm512_set1_ps(a##r[off + cs]), b1, o##r);
#define FNN_AVX512_LAST(r) e##r = _mm512_fmadd_ps(_mm512_set1_ps(a##r[off]), b0, e##r);
#define FNN_AVX512_STORE(r)                                                                        \
    e##r = _mm512_add_ps(e##r, o##r);                                                              \
    if (beta == 0.0f)                                                                              \
        _mm512_storeu_ps(c + (r) * ldc, _mm512_mul_ps(va, e##r));                                  \
    else                                                                                           \
        _mm512_storeu_ps(c + (r) * ldc,                                                            \
                         _mm512_fmadd_ps(vb, _mm512_loadu_ps(c + (r) * ldc), _mm512_mul_ps(va, e##r)));

__attribute__((target("avx512f")))
static void fnn_ukr_avx512(int kc, const float *FNN_RESTRICT a, ptrdiff_t rs, ptrdiff_t cs,
                           const float *FNN_RESTRICT b, float *FNN_RESTRICT c, ptrdiff_t ldc, float alpha,
                           float beta)
{
    const float *a0 = a, *a1 = a + rs, *a2 = a + 2 * rs, *a3 = a + 3 * rs, *a4 = a + 4 * rs, *a5 = a + 5 * rs;
    ptrdiff_t off = 0;
    __m512 e0 = _mm512_setzero_ps(), e1 = e0, e2 = e0, e3 = e0, e4 = e0, e5 = e0;
    __m512 o0 = e0, o1 = e0, o2 = e0, o3 = e0, o4 = e0, o5 = e0;
    __m512 b0, b1, va, vb;
    int k, r;
    for (r = 0; r < FNN_MR; r++)
        _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
    for (k = 0; k + 2 <= kc; k += 2) {
        b0 = _mm512_loadu_ps(b);
        b1 = _mm512_loadu_ps(b + FNN_NR);
        FNN_AVX512_ROW(0) FNN_AVX512_ROW(1) FNN_AVX512_ROW(2)
        FNN_AVX512_ROW(3) FNN_AVX512_ROW(4) FNN_AVX512_ROW(5)
        off += 2 * cs;
        b += 2 * FNN_NR;
    }
    if (k < kc) {
        b0 = _mm512_loadu_ps(b);
        FNN_AVX512_LAST(0) FNN_AVX512_LAST(1) FNN_AVX512_LAST(2)
        FNN_AVX512_LAST(3) FNN_AVX512_LAST(4) FNN_AVX512_LAST(5)
    }
    va = _mm512_set1_ps(alpha);
    vb = _mm512_set1_ps(beta);
    FNN_AVX512_STORE(0) FNN_AVX512_STORE(1) FNN_AVX512_STORE(2)
    FNN_AVX512_STORE(3) FNN_AVX512_STORE(4) FNN_AVX512_STORE(5)
}
#undef FNN_AVX512_ROW
#undef FNN_AVX512_LAST
#undef FNN_AVX512_STORE
#endif


/* ---- run-time choice of the micro-kernel ---- */

static fnn_ukr_fn fnn_ukr_chosen = NULL;
static const char *fnn_path_chosen = "portable";

/* Pick the micro-kernel for this CPU (FASTNN_CPU=portable forces the portable one, FASTNN_CPU=avx2 the AVX2 one
   on an AVX-512 CPU). Idempotent. */
static void fnn_gemm_init(void)
{
    const char *want = getenv("FASTNN_CPU");
    fnn_ukr_fn ukr = fnn_ukr_portable;
    const char *path = "portable";
#if FNN_HAVE_AVX2
    if (!(want != NULL && strcmp(want, "portable") == 0)) {
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
            ukr = fnn_ukr_avx2;
            path = "avx2";
            if (__builtin_cpu_supports("avx512f") && !(want != NULL && strcmp(want, "avx2") == 0)) {
                ukr = fnn_ukr_avx512;
                path = "avx512";
            }
        }
    }
#else
    (void)want;
#endif
    fnn_path_chosen = path;
    fnn_ukr_chosen = ukr;
}

/* "avx512", "avx2" or "portable": the micro-kernel in use. */
static const char *fnn_cpu_path(void)
{
    if (fnn_ukr_chosen == NULL)
        fnn_gemm_init();
    return fnn_path_chosen;
}

/* 1 where fastnn's GEMM also beats BLAS on the wide products (dense.pxd's use_own_gemm): the AVX-512 kernel,
   1.09-1.77x OpenBLAS's Haswell kernels at every wide product of W4 on a Zen 5 host (bench/GEMM.md). */
static int fnn_own_wide(void)
{
    if (fnn_ukr_chosen == NULL)
        fnn_gemm_init();
#if FNN_HAVE_AVX2
    return fnn_ukr_chosen == fnn_ukr_avx512;
#else
    return 0;
#endif
}


/* ---- packing ---- */

/* dst[k * width + r] = src[r * ld + k] for rows r < n, k < kc; rows n..width-1 zero. (Rows of the source
   become columns of the panel: op(A) = A into MR-row panels, op(B) = B^T into NR-column panels.) */
static void fnn_pack_interleave(const float *src, ptrdiff_t ld, int n, int kc, int width, float *dst)
{
    int r = 0, k;
#if FNN_HAVE_SSE2
    for (; r + 4 <= n; r += 4) {        /* 4 rows x 4 k at a time: a 4 x 4 transpose */
        const float *s0 = src + r * ld, *s1 = s0 + ld, *s2 = s1 + ld, *s3 = s2 + ld;
        for (k = 0; k + 4 <= kc; k += 4) {
            __m128 r0 = _mm_loadu_ps(s0 + k), r1 = _mm_loadu_ps(s1 + k);
            __m128 r2 = _mm_loadu_ps(s2 + k), r3 = _mm_loadu_ps(s3 + k);
            _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
            _mm_storeu_ps(dst + k * width + r, r0);
            _mm_storeu_ps(dst + (k + 1) * width + r, r1);
            _mm_storeu_ps(dst + (k + 2) * width + r, r2);
            _mm_storeu_ps(dst + (k + 3) * width + r, r3);
        }
        for (; k < kc; k++) {
            dst[k * width + r] = s0[k]; dst[k * width + r + 1] = s1[k];
            dst[k * width + r + 2] = s2[k]; dst[k * width + r + 3] = s3[k];
        }
    }
    for (; r + 2 <= n; r += 2) {        /* 2 rows x 4 k: an interleave */
        const float *s0 = src + r * ld, *s1 = s0 + ld;
        for (k = 0; k + 4 <= kc; k += 4) {
            const __m128 r0 = _mm_loadu_ps(s0 + k), r1 = _mm_loadu_ps(s1 + k);
            const __m128 lo = _mm_unpacklo_ps(r0, r1), hi = _mm_unpackhi_ps(r0, r1);
            _mm_storel_pi((__m64 *)(dst + k * width + r), lo);
            _mm_storeh_pi((__m64 *)(dst + (k + 1) * width + r), lo);
            _mm_storel_pi((__m64 *)(dst + (k + 2) * width + r), hi);
            _mm_storeh_pi((__m64 *)(dst + (k + 3) * width + r), hi);
        }
        for (; k < kc; k++) {
            dst[k * width + r] = s0[k];
            dst[k * width + r + 1] = s1[k];
        }
    }
#endif
    for (; r < n; r++)
        for (k = 0; k < kc; k++)
            dst[k * width + r] = src[r * ld + k];
    for (; r < width; r++)
        for (k = 0; k < kc; k++)
            dst[k * width + r] = 0.0f;
}

/* dst[k * width + j] = src[k * ld + j] for j < n, k < kc; columns n..width-1 zero. (Rows of the source stay
   rows: op(A) = A^T into MR-row panels, op(B) = B into NR-column panels.) */
/* kc full rows of `width` floats; inlined with a constant width, each memcpy is a few vector moves, not the
   scalar ones GCC makes of a copy loop */
static inline void fnn_copy_rows(const float *src, ptrdiff_t ld, int kc, int width, float *dst)
{
    int k;
    for (k = 0; k < kc; k++)
        memcpy(dst + k * width, src + k * ld, (size_t)width * sizeof(float));
}

static void fnn_pack_copy(const float *src, ptrdiff_t ld, int n, int kc, int width, float *dst)
{
    int j, k;
    if (n == FNN_NR && width == FNN_NR) {
        fnn_copy_rows(src, ld, kc, FNN_NR, dst);
        return;
    }
    if (n == FNN_MR && width == FNN_MR) {
        fnn_copy_rows(src, ld, kc, FNN_MR, dst);
        return;
    }
    for (k = 0; k < kc; k++) {
        const float *s = src + k * ld;
        for (j = 0; j < n; j++)
            dst[k * width + j] = s[j];
        for (; j < width; j++)
            dst[k * width + j] = 0.0f;
    }
}

/* rows [i0, i0+m) x columns [k0, k0+kc) of op(A) -> dst[k * MR + i], rows m..MR-1 zero */
static void fnn_pack_a(int ta, const float *A, ptrdiff_t lda, int i0, int m, int k0, int kc, float *dst)
{
    if (ta)
        fnn_pack_copy(A + (ptrdiff_t)k0 * lda + i0, lda, m, kc, FNN_MR, dst);
    else
        fnn_pack_interleave(A + (ptrdiff_t)i0 * lda + k0, lda, m, kc, FNN_MR, dst);
}

/* rows [k0, k0+kc) x columns [j0, j0+n) of op(B) -> dst[k * NR + j], columns n..NR-1 zero */
static void fnn_pack_b(int tb, const float *B, ptrdiff_t ldb, int k0, int kc, int j0, int n, float *dst)
{
    if (tb)
        fnn_pack_interleave(B + (ptrdiff_t)j0 * ldb + k0, ldb, n, kc, FNN_NR, dst);
    else
        fnn_pack_copy(B + (ptrdiff_t)k0 * ldb + j0, ldb, n, kc, FNN_NR, dst);
}

/* The full panels [p0, p1) of op(B) = B (not transposed), rows [k0, k0+kc): each row of B is read once,
   left to right across the panels (a stream the hardware prefetcher follows), not panel by panel. */
static void fnn_pack_b_rows(const float *B, ptrdiff_t ldb, int k0, int kc, int p0, int p1, float *dst0)
{
    int k, p;
    for (k = 0; k < kc; k++) {
        const float *src = B + (ptrdiff_t)(k0 + k) * ldb + p0 * FNN_NR;
        float *dst = dst0 + k * FNN_NR;
        for (p = p0; p < p1; p++, src += FNN_NR, dst += (ptrdiff_t)FNN_NR * kc)
            memcpy(dst, src, FNN_NR * sizeof(float));      /* a fixed size: two vector moves, no call */
    }
}

/* ---- the workspace: a few cached buffers, or malloc when other calls hold them all ---- */

#if defined(__GNUC__) || defined(__clang__)
#define FNN_WS_SLOTS 8          /* concurrent calls served without malloc: the threads of a training step's region */
static float *fnn_ws_cached[FNN_WS_SLOTS];      /* each grows to the largest workspace asked of it, never freed */
static size_t fnn_ws_cached_floats[FNN_WS_SLOTS];
static int fnn_ws_busy[FNN_WS_SLOTS];

/* A workspace of `floats`; *slot is the cached buffer's index, or -1 for a malloc-ed one */
static float *fnn_ws_acquire(size_t floats, int *slot)
{
    int i;
    *slot = -1;
    for (i = 0; i < FNN_WS_SLOTS; i++) {
        if (__atomic_exchange_n(&fnn_ws_busy[i], 1, __ATOMIC_ACQUIRE) != 0)
            continue;
        if (fnn_ws_cached_floats[i] < floats) {
            free(fnn_ws_cached[i]);
            fnn_ws_cached[i] = (float *)malloc(floats * sizeof(float));
            fnn_ws_cached_floats[i] = fnn_ws_cached[i] != NULL ? floats : 0;
        }
        if (fnn_ws_cached[i] != NULL) {
            *slot = i;
            return fnn_ws_cached[i];
        }
        __atomic_store_n(&fnn_ws_busy[i], 0, __ATOMIC_RELEASE);
        return NULL;
    }
    return (float *)malloc(floats * sizeof(float));
}

static void fnn_ws_release(float *ws, int slot)
{
    if (slot >= 0)
        __atomic_store_n(&fnn_ws_busy[slot], 0, __ATOMIC_RELEASE);
    else
        free(ws);
}
#else
static float *fnn_ws_acquire(size_t floats, int *slot) { *slot = -1; return (float *)malloc(floats * sizeof(float)); }
static void fnn_ws_release(float *ws, int slot) { (void)slot; free(ws); }
#endif


/* ---- the driver ---- */

typedef struct {
    int ta, tb, M, N, K;
    float alpha, beta;
    const float *A, *B;
    ptrdiff_t lda, ldb, ldc;
    float *C;
    fnn_prep_fn prep;
    void *prep_ctx;
    fnn_epi_fn epi;
    void *epi_ctx;
    fnn_ukr_fn ukr;
    int mp;              /* MR-row panels of op(A) */
    int kcb;             /* K block size (the last block may be shorter); a function of K only */
    int ncb;             /* columns of a B block (a multiple of NR) */
    int kgr;             /* rows of a B block: whole K blocks, kgr x ncb <= FNN_B_FLOATS where K allows */
    int mcp;             /* MR-row panels of an A block */
    int ib, jb;          /* row and column of the full C at this job's (0, 0): the hooks see full-C indices */
    float *pb;           /* the packed B block, kgr x ncb, shared */
    float *pa;           /* the packed A blocks, (mcp MR) x kcb, one per thread */
} fnn_gemm_job;

static inline int fnn_min(int a, int b) { return a < b ? a : b; }

/* The thread grid: the rows of C (in panels) are split over ti_n threads, each row group's columns over tj_n
   (only when there are fewer row panels than threads). Only who-computes-what depends on it, never the bits. */
static inline void fnn_grid(int mp, int nth, int *ti_n, int *tj_n)
{
    *ti_n = nth < mp ? nth : mp;
    *tj_n = nth / *ti_n;
}

static void fnn_gemm_run(const fnn_gemm_job *g, int tid, int nth)
{
    const int M = g->M, N = g->N, K = g->K, kcb = g->kcb, mcp = g->mcp;
    const int chunk = FNN_NC / FNN_NR;          /* panels per prep call and per epilogue tile */
    /* op(B) = B of exactly one panel's width, rows NR floats apart: B is its own packed panel (a narrow layer's
       W in forward, dY in its dW), read where it lies */
    const int b_in_place = !g->tb && N == FNN_NR && g->ldb == FNN_NR;
    float *pa = g->pa + (size_t)tid * mcp * FNN_MR * kcb;
    float tmp[FNN_MR * FNN_NR];
    int ti_n, tj_n, ti, tj, row_lo, row_hi, jc, kg;
    fnn_grid(g->mp, nth, &ti_n, &tj_n);
    ti = tid % ti_n;
    tj = tid / ti_n;                            /* tj >= tj_n: this thread only helps to pack B */
    row_lo = ti * g->mp / ti_n;
    row_hi = (ti + 1) * g->mp / ti_n;

    for (jc = 0; jc < N; jc += g->ncb) {
        const int nc = fnn_min(g->ncb, N - jc), nbp = (nc + FNN_NR - 1) / FNN_NR;
        const int col_lo = tj * nbp / tj_n, col_hi = (tj + 1) * nbp / tj_n;
        for (kg = 0; kg < K; kg += g->kgr) {
            const int kg1 = fnn_min(kg + g->kgr, K);
            int p, pi0, k0;
#ifdef _OPENMP
            if (nth > 1 && (jc > 0 || kg > 0)) {    /* everyone is done with the previous B block */
#pragma omp barrier
            }
#endif
            /* 1. pack the B block (rows [kg, kg1), this jc's columns): each thread a contiguous share of the
                  panels, K block by K block, prep first */
            for (p = tid * nbp / nth; p < (tid + 1) * nbp / nth; p += chunk) {
                const int p1 = fnn_min(p + chunk, (tid + 1) * nbp / nth);
                const int full = fnn_min(p1, (N - jc) / FNN_NR);   /* panels with all NR columns */
                for (k0 = kg; k0 < kg1; k0 += kcb) {
                    const int kc = fnn_min(kcb, K - k0);
                    float *pb = g->pb + (ptrdiff_t)(k0 - kg) * nbp * FNN_NR;
                    int q = p;
                    if (g->prep != NULL)
                        g->prep(g->prep_ctx, k0, kc, g->jb + jc + p * FNN_NR, fnn_min(p1 * FNN_NR, nc) - p * FNN_NR);
                    if (b_in_place)
                        continue;
                    if (!g->tb && full > p) {
                        fnn_pack_b_rows(g->B, g->ldb, k0, kc, jc / FNN_NR + p, jc / FNN_NR + full,
                                        pb + (ptrdiff_t)p * FNN_NR * kc);
                        q = full;
                    }
                    for (; q < p1; q++)
                        fnn_pack_b(g->tb, g->B, g->ldb, k0, kc, jc + q * FNN_NR, fnn_min(FNN_NR, nc - q * FNN_NR),
                                   pb + (ptrdiff_t)q * FNN_NR * kc);
                }
            }
#ifdef _OPENMP
            if (nth > 1) {
#pragma omp barrier
            }
#endif
            if (tj >= tj_n)
                continue;
            /* 2. this thread's rows, an A block at a time; for each, all K blocks of the B block, so that its
                  tile of C stays in cache from the first K block to the epilogue */
            for (pi0 = row_lo; pi0 < row_hi; pi0 += mcp) {
                const int pi1 = fnn_min(pi0 + mcp, row_hi);
                for (k0 = kg; k0 < kg1; k0 += kcb) {
                    const int kc = fnn_min(kcb, K - k0), last = k0 + kc == K;
                    const float beta = k0 == 0 ? g->beta : 1.0f;
                    const float *pb = b_in_place ? g->B + (ptrdiff_t)k0 * FNN_NR
                                                 : g->pb + (ptrdiff_t)(k0 - kg) * nbp * FNN_NR;
                    int pi, q0;
                    /* Pack the A block when it will be read more than once (this thread's columns span more
                       than one B panel); else each full A panel is read in place, once, and only an edge
                       panel (rows past M) is packed. */
                    const int in_place = col_hi - col_lo == 1;
                    for (pi = pi0; pi < pi1; pi++)
                        if (!in_place || M - pi * FNN_MR < FNN_MR)
                            fnn_pack_a(g->ta, g->A, g->lda, pi * FNN_MR, fnn_min(FNN_MR, M - pi * FNN_MR), k0, kc,
                                       pa + (ptrdiff_t)(pi - pi0) * FNN_MR * kc);
                    for (q0 = col_lo; q0 < col_hi; q0 += chunk) {
                        const int q1 = fnn_min(q0 + chunk, col_hi);
                        int q;
                        for (q = q0; q < q1; q++) {
                            const float *b = pb + (ptrdiff_t)q * FNN_NR * kc;
                            const int j = jc + q * FNN_NR, n = fnn_min(FNN_NR, N - j);
                            for (pi = pi0; pi < pi1; pi++) {
                                const int i = pi * FNN_MR, m = fnn_min(FNN_MR, M - i);
                                const float *a = pa + (ptrdiff_t)(pi - pi0) * FNN_MR * kc;
                                ptrdiff_t rs = 1, cs = FNN_MR;
                                float *c = g->C + (ptrdiff_t)i * g->ldc + j;
                                if (in_place && m == FNN_MR) {
                                    a = g->ta ? g->A + (ptrdiff_t)k0 * g->lda + i : g->A + (ptrdiff_t)i * g->lda + k0;
                                    rs = g->ta ? 1 : g->lda;
                                    cs = g->ta ? g->lda : 1;
                                }
                                if (m == FNN_MR && n == FNN_NR) {
                                    g->ukr(kc, a, rs, cs, b, c, g->ldc, g->alpha, beta);
                                } else {    /* edge micro-tile: through a full-size scratch tile */
                                    int r, s;
                                    g->ukr(kc, a, rs, cs, b, tmp, FNN_NR, 1.0f, 0.0f);
                                    const float alpha = g->alpha;   /* a local, and beta's test out of the
                                                                       loops: they vectorise */
                                    if (beta == 0.0f) {
                                        for (r = 0; r < m; r++)
                                            for (s = 0; s < n; s++)
                                                c[r * g->ldc + s] = alpha * tmp[r * FNN_NR + s];
                                    } else {
                                        for (r = 0; r < m; r++)
                                            for (s = 0; s < n; s++)
                                                c[r * g->ldc + s] = alpha * tmp[r * FNN_NR + s] + beta * c[r * g->ldc + s];
                                    }
                                }
                            }
                        }
                        if (last && g->epi != NULL) {   /* this tile of C is final and still in cache */
                            const int i0 = pi0 * FNN_MR, j0 = jc + q0 * FNN_NR;
                            g->epi(g->epi_ctx, g->C + (ptrdiff_t)i0 * g->ldc + j0, g->ldc, g->ib + i0, g->jb + j0,
                                   fnn_min(pi1 * FNN_MR, M) - i0, fnn_min(jc + q1 * FNN_NR, N) - j0);
                        }
                    }
                }
            }
        }
    }
}

/* The column split: each thread computes its own columns of C (whole NR panels) as a 1-thread job with its
   own packed buffers -- no shared B block, so no barrier. Each thread packs all of op(A) (M x K) but only its
   own share of op(B), which stays in its own L2; the row split shares the packing of op(B) (K x N) and each
   thread reads all of it. So: by columns when there are enough column panels to share evenly and op(A) is no
   bigger than op(B) (M <= N), else by rows. */
static inline int fnn_split_cols(int M, int N, int nthreads)
{
#ifdef FNN_ROW_SPLIT                    /* tuning builds: the row split only (CFLAGS=-DFNN_ROW_SPLIT) */
    (void)M; (void)N; (void)nthreads;
    return 0;
#else
    const int np_n = (N + FNN_NR - 1) / FNN_NR;
    return nthreads > 1 && M <= N && np_n >= nthreads && (np_n % nthreads == 0 || np_n >= 4 * nthreads);
#endif
}

/* g's blocking for C's columns [0, n): K blocks, B block width and height */
static void fnn_block_sizes(fnn_gemm_job *g, int n)
{
    const int nk = (g->K + FNN_KC - 1) / FNN_KC;
    g->kcb = (g->K + nk - 1) / nk;
    g->ncb = fnn_min((n + FNN_NR - 1) / FNN_NR * FNN_NR, FNN_NCB);
    g->kgr = fnn_min(g->K, (FNN_B_FLOATS / g->ncb / g->kcb > 1 ? FNN_B_FLOATS / g->ncb / g->kcb : 1) * g->kcb);
}

/* Thread tid's whole `width`-item panels when `total` items are shared out over nth threads: items
   [*lo, *lo + *n), *n = 0 for a thread with none (C's NR-column panels, or its MR-row panels) */
static void fnn_panel_share(int tid, int nth, int total, int width, int *lo, int *n)
{
    const int panels = (total + width - 1) / width, p0 = tid * panels / nth, p1 = (tid + 1) * panels / nth;
    *lo = p0 * width;
    *n = p1 == p0 ? 0 : fnn_min(p1 * width, total) - *lo;
}

/* Thread tid of nth in the column split: its column panels of C, run as a 1-thread job on ws */
static void fnn_gemm_run_cols(const fnn_gemm_job *g, int tid, int nth, float *ws)
{
    int j0, n;
    fnn_gemm_job s = *g;
    fnn_panel_share(tid, nth, g->N, FNN_NR, &j0, &n);
    if (n == 0)
        return;
    s.N = n;
    s.B = g->tb ? g->B + (ptrdiff_t)j0 * g->ldb : g->B + j0;
    s.C = g->C + j0;
    s.jb = g->jb + j0;
    s.pb = ws;
    s.pa = ws + (size_t)g->kgr * g->ncb;
    fnn_gemm_run(&s, 0, 1);
}

/* fnn_sgemm_hooked on a block of a larger C whose (0, 0) is the larger C's (ib, jb): the hooks get the larger
   C's indices. */
static int fnn_sgemm_at(int trans_a, int trans_b, int M, int N, int K, float alpha,
                        const float *A, ptrdiff_t lda, const float *B, ptrdiff_t ldb,
                        float beta, float *C, ptrdiff_t ldc, int nthreads,
                        fnn_prep_fn prep, void *prep_ctx, fnn_epi_fn epi, void *epi_ctx, int ib, int jb)
{
    fnn_gemm_job g;
    float stack[FNN_STACK_FLOATS + 16];
    float *ws = NULL;
    int slot = -1, ti_n, tj_n, rows, np_n, by_cols;
    size_t need, per_thread = 0;
    if (M <= 0 || N <= 0)
        return 0;
    if (K <= 0) {                       /* no product: C = beta C, still through the hooks' contract */
        int i, j;
        for (i = 0; i < M; i++)
            for (j = 0; j < N; j++)
                C[(ptrdiff_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(ptrdiff_t)i * ldc + j];
        if (epi != NULL)
            epi(epi_ctx, C, ldc, ib, jb, M, N);
        return 0;
    }
    if (fnn_ukr_chosen == NULL)
        fnn_gemm_init();
    g.ta = trans_a; g.tb = trans_b; g.M = M; g.N = N; g.K = K;
    g.alpha = alpha; g.beta = beta;
    g.A = A; g.B = B; g.C = C; g.lda = lda; g.ldb = ldb; g.ldc = ldc;
    g.prep = prep; g.prep_ctx = prep_ctx; g.epi = epi; g.epi_ctx = epi_ctx;
    g.ukr = fnn_ukr_chosen;
    g.ib = ib;
    g.jb = jb;
    g.mp = (M + FNN_MR - 1) / FNN_MR;
    np_n = (N + FNN_NR - 1) / FNN_NR;
    if (nthreads < 1 || g.mp * np_n == 1)
        nthreads = 1;
    by_cols = fnn_split_cols(M, N, nthreads);
    if (by_cols) {                      /* blocking for the widest thread's columns; a workspace each */
        fnn_block_sizes(&g, (np_n + nthreads - 1) / nthreads * FNN_NR);
        g.mcp = fnn_min(g.mp, FNN_MC / FNN_MR);
        per_thread = ((size_t)g.kgr * g.ncb + (size_t)g.mcp * FNN_MR * g.kcb + 15) / 16 * 16;
        need = nthreads * per_thread + 16;
    } else {
        fnn_block_sizes(&g, N);
        fnn_grid(g.mp, nthreads, &ti_n, &tj_n);
        rows = (g.mp + ti_n - 1) / ti_n;    /* panels per row group */
        g.mcp = fnn_min(rows, FNN_MC / FNN_MR);
        need = (size_t)g.kgr * g.ncb + (size_t)nthreads * g.mcp * FNN_MR * g.kcb + 16;
    }
    if (need <= FNN_STACK_FLOATS + 16) {
        ws = stack;
    } else {
        ws = fnn_ws_acquire(need, &slot);
        if (ws == NULL)
            return -1;
    }
    g.pb = (float *)(((uintptr_t)ws + 63) & ~(uintptr_t)63);   /* B panels: 64-byte aligned NR-float rows */
    g.pa = g.pb + (size_t)g.kgr * g.ncb;
#ifdef _OPENMP
    if (nthreads > 1 && by_cols) {
#pragma omp parallel num_threads(nthreads)
        fnn_gemm_run_cols(&g, omp_get_thread_num(), omp_get_num_threads(),
                          g.pb + (size_t)omp_get_thread_num() * per_thread);
    } else if (nthreads > 1) {
#pragma omp parallel num_threads(nthreads)
        fnn_gemm_run(&g, omp_get_thread_num(), omp_get_num_threads());
    } else
#endif
    {
        fnn_gemm_run(&g, 0, 1);
    }
    if (ws != stack)
        fnn_ws_release(ws, slot);
    return 0;
}

/* C = alpha op(A) op(B) + beta C (C is not read when beta == 0), on up to nthreads OpenMP threads,
   with the optional prep / epi hooks (NULL for none). Returns 0, or -1 when out of memory (C untouched). */
static int fnn_sgemm_hooked(int trans_a, int trans_b, int M, int N, int K, float alpha,
                            const float *A, ptrdiff_t lda, const float *B, ptrdiff_t ldb,
                            float beta, float *C, ptrdiff_t ldc, int nthreads,
                            fnn_prep_fn prep, void *prep_ctx, fnn_epi_fn epi, void *epi_ctx)
{
    return fnn_sgemm_at(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, nthreads,
                        prep, prep_ctx, epi, epi_ctx, 0, 0);
}

/* For callers that run their own parallel region: whether fnn_sgemm_part shares an M x N product out over nth
   threads by columns (else by rows) */
static int fnn_part_by_cols(int M, int N, int nth)
{
    return nth <= 1 || fnn_split_cols(M, N, nth)
           || (M + FNN_MR - 1) / FNN_MR < nth;    /* too few row panels: by columns, however uneven */
}

/* Thread tid's share of an M x N product over nth threads: rows [*i0, *i0 + *m) x columns [*j0, *j0 + *n) of C,
   whole NR-column panels (fnn_part_by_cols) or whole MR-row panels; *m or *n is 0 for a thread with no share */
static void fnn_part_share(int tid, int nth, int M, int N, int *i0, int *m, int *j0, int *n)
{
    *i0 = 0; *m = M; *j0 = 0; *n = N;
    if (fnn_part_by_cols(M, N, nth))
        fnn_panel_share(tid, nth, N, FNN_NR, j0, n);
    else
        fnn_panel_share(tid, nth, M, FNN_MR, i0, m);
}

/* Thread tid's share (fnn_part_share) of C = alpha op(A) op(B) + beta C, when each of nth threads of the caller's
   parallel region calls this for the same product: a 1-thread product with its own packed buffers -- no barrier
   inside -- with the bits of the whole product (the same micro-tiles). The hooks get full-C indices; prep runs
   on the share's columns, so with a row split every thread would run it on all of them: pass prep only when
   fnn_part_by_cols. Returns 0, or -1 when out of memory (that share untouched). */
static int fnn_sgemm_part(int tid, int nth, int trans_a, int trans_b, int M, int N, int K, float alpha,
                          const float *A, ptrdiff_t lda, const float *B, ptrdiff_t ldb,
                          float beta, float *C, ptrdiff_t ldc,
                          fnn_prep_fn prep, void *prep_ctx, fnn_epi_fn epi, void *epi_ctx)
{
    int i0, m, j0, n;
    fnn_part_share(tid, nth, M, N, &i0, &m, &j0, &n);
    if (m == 0 || n == 0)
        return 0;
    return fnn_sgemm_at(trans_a, trans_b, m, n, K, alpha, trans_a ? A + i0 : A + (ptrdiff_t)i0 * lda, lda,
                        trans_b ? B + (ptrdiff_t)j0 * ldb : B + j0, ldb, beta, C + (ptrdiff_t)i0 * ldc + j0, ldc,
                        1, prep, prep_ctx, epi, epi_ctx, i0, j0);
}

/* C = alpha op(A) op(B) + beta C on up to nthreads threads. Returns 0, or -1 when out of memory. */
static int fnn_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
                     const float *A, ptrdiff_t lda, const float *B, ptrdiff_t ldb,
                     float beta, float *C, ptrdiff_t ldc, int nthreads)
{
    return fnn_sgemm_hooked(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, nthreads,
                            NULL, NULL, NULL, NULL);
}

/* A narrow C (N < FNN_NARROW_N columns, e.g. a 3-class output layer) leaves 16 - N of the micro-tile's 16 columns
   as padding. Its transpose C^T = op(B)^T op(A)^T has N rows of M columns: one 6-row panel, full 16-column
   panels. fnn_sgemm_narrow computes that into a buffer of its own and writes it back transposed: M <= FNN_NARROW_M
   rows of C (callers loop over row blocks), on the calling thread, the bits of a 1-thread fnn_sgemm of C^T.
   Returns 0, or -1 when out of memory (C untouched). */
#define FNN_NARROW_N 8
#define FNN_NARROW_M 256
static int fnn_sgemm_narrow(int trans_a, int trans_b, int M, int N, int K, float alpha,
                            const float *A, ptrdiff_t lda, const float *B, ptrdiff_t ldb,
                            float beta, float *C, ptrdiff_t ldc)
{
    float T[FNN_NARROW_N * FNN_NARROW_M];       /* C^T, N x M, row-major */
    int i, j;
    if (M <= 0 || N <= 0)
        return 0;
    if (M > FNN_NARROW_M || N > FNN_NARROW_N)
        return -1;
    if (fnn_sgemm_at(!trans_b, !trans_a, N, M, K, alpha, B, ldb, A, lda, 0.0f, T, M, 1, NULL, NULL, NULL, NULL,
                     0, 0) != 0)
        return -1;
    for (i = 0; i < M; i++) {
        float *c = C + (ptrdiff_t)i * ldc;
        if (beta == 0.0f)
            for (j = 0; j < N; j++)
                c[j] = T[(ptrdiff_t)j * M + i];
        else
            for (j = 0; j < N; j++)
                c[j] = T[(ptrdiff_t)j * M + i] + beta * c[j];
    }
    return 0;
}

#endif
