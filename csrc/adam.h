/* Adam's element-wise update (torch.optim.Adam / AdamW, single-tensor form; optim.pxd's adam_step calls it), in C
   so that one definition compiles twice: for baseline x86-64 (SSE2: 4 floats, 2 doubles a vector) and for AVX2
   (twice as wide), picked at run time as gemm.h picks its micro-kernel (FASTNN_CPU=portable forces the former).
   Both are the same IEEE operations in the same order -- AVX2 without FMA, so nothing is contracted -- and give
   the same bits; only the width differs. Each element: g = sign g_i (+ wd p if l2), p *= decay;
   m = lerp(m, g); v = b2 v + (1 - b2) g^2 (v = max(v, max v) if amsgrad, NaN winning);
   p -= step_size m / (sqrt(v) / sqrt(1 - b2^t) + eps). Legend: n elements.
   The loops also say what became inf/NaN, while each element is in a register: bit 1 of the result for a
   gradient, bit 0 for a new parameter or state (x - x is 0 for a finite x, NaN otherwise; OR-ed as integers,
   which vectorise). */
#ifndef FASTNN_ADAM_H
#define FASTNN_ADAM_H
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#if defined(_MSC_VER)
#define FNN_ADAM_RESTRICT __restrict
#else
#define FNN_ADAM_RESTRICT __restrict__
#endif

#define FNN_ADAM_ELEMENT(T, SQRT, AMSGRAD)                                                              \
    {                                                                                                   \
        const T p = params[i] * decay, g0 = grads[i];                                                   \
        T g = sign * g0, v, m, p1;                                                                      \
        if (l2)                                                                                         \
            g = g + wd * p;                                                                             \
        m = exp_avg[i] = (from_start ? exp_avg[i] : g) + coef * (g - exp_avg[i]);                       \
        v = exp_avg_sq[i] = exp_avg_sq[i] * beta2 + beta2_weight * g * g;                               \
        if (AMSGRAD) {                                                                                  \
            const T vmax = max_exp_avg_sq[i];                                                           \
            v = max_exp_avg_sq[i] = (v > vmax) | (v != v) ? v : vmax;                                   \
        }                                                                                               \
        p1 = params[i] = p - step_size * (m / (SQRT(v) / bias_correction2_sqrt + eps));                 \
        bad_grad |= (g0 - g0) != 0;                                                                     \
        bad |= ((p1 - p1) != 0) | ((m - m) != 0) | ((v - v) != 0) | ((exp_avg_sq[i] - exp_avg_sq[i]) != 0); \
    }

/* The loops, one per amsgrad case (the state it touches), for one element type and target */
#define FNN_DEFINE_ADAM(NAME, T, SQRT, ATTR)                                                            \
    ATTR static int NAME(T *FNN_ADAM_RESTRICT params, T *FNN_ADAM_RESTRICT exp_avg,                    \
                          T *FNN_ADAM_RESTRICT exp_avg_sq, T *FNN_ADAM_RESTRICT max_exp_avg_sq,         \
                          const T *FNN_ADAM_RESTRICT grads, ptrdiff_t n, T sign, T wd, T decay, int l2,  \
                          int from_start, T coef, T beta2, T beta2_weight, T step_size,                 \
                          T bias_correction2_sqrt, T eps, int amsgrad)                                  \
    {                                                                                                   \
        ptrdiff_t i;                                                                                    \
        int bad = 0, bad_grad = 0;                                                                      \
        if (amsgrad) {                                                                                  \
            for (i = 0; i < n; i++)                                                                     \
                FNN_ADAM_ELEMENT(T, SQRT, 1)                                                            \
        } else {                                                                                        \
            for (i = 0; i < n; i++)                                                                     \
                FNN_ADAM_ELEMENT(T, SQRT, 0)                                                            \
        }                                                                                               \
        return (bad_grad ? 2 : 0) | (bad ? 1 : 0);                                                      \
    }

typedef int (*fnn_adam_f32_fn)(float *, float *, float *, float *, const float *, ptrdiff_t, float, float, float,
                                int, int, float, float, float, float, float, float, int);
typedef int (*fnn_adam_f64_fn)(double *, double *, double *, double *, const double *, ptrdiff_t, double, double,
                                double, int, int, double, double, double, double, double, double, int);

FNN_DEFINE_ADAM(fnn_adam_f32_base, float, sqrtf, )
FNN_DEFINE_ADAM(fnn_adam_f64_base, double, sqrt, )
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define FNN_ADAM_AVX2 1
FNN_DEFINE_ADAM(fnn_adam_f32_avx2, float, sqrtf, __attribute__((target("avx2"))))
FNN_DEFINE_ADAM(fnn_adam_f64_avx2, double, sqrt, __attribute__((target("avx2"))))
#else
#define FNN_ADAM_AVX2 0
#endif

static fnn_adam_f32_fn fnn_adam_f32 = fnn_adam_f32_base;
static fnn_adam_f64_fn fnn_adam_f64 = fnn_adam_f64_base;

/* Pick the loops for this CPU, once, at import (each extension that includes this header has its own choice;
   all read the same environment). */
static void fnn_adam_init(void)
{
#if FNN_ADAM_AVX2
    const char *want = getenv("FASTNN_CPU");
    if (!(want != NULL && strcmp(want, "portable") == 0)) {
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx2")) {
            fnn_adam_f32 = fnn_adam_f32_avx2;
            fnn_adam_f64 = fnn_adam_f64_avx2;
        }
    }
#endif
}
#endif
