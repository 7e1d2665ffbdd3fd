/* glibc's log1pf against Kahan's log1p through logf (csrc/activations.pxd's _log1p): time per call over 2^20
   inputs in [0, 2) and [0, 2e-3), and the worst relative error of each against double log1p.
       gcc -O2 -fno-math-errno bench/log1p.c -o /tmp/log1p -lm && /tmp/log1p                               */
#include <math.h>
#include <stdio.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static inline float kahan_log1pf(float x)
{
    float u = 1.0f + x;
    if (u == 1.0f)
        return x;
    if (u == INFINITY)
        return u;
    return logf(u) * (x / (u - 1.0f));
}

enum { N = 1 << 20 };
static float x[N];

int main(void)
{
    unsigned s = 1;
    volatile float sink;
    for (int i = 0; i < N; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (s >> 8) * (1.0f / 16777216.0f) * 2.0f * (i % 3 ? 1.0f : 1e-3f);
    }
    for (int rep = 0; rep < 3; rep++) {
        float a = 0;
        double t = now();
        for (int i = 0; i < N; i++)
            a += log1pf(x[i]);
        double glibc = now() - t;
        sink = a;
        a = 0;
        t = now();
        for (int i = 0; i < N; i++)
            a += kahan_log1pf(x[i]);
        double kahan = now() - t;
        sink = a;
        printf("ns per call: glibc log1pf %.1f, Kahan via logf %.1f\n", glibc / N * 1e9, kahan / N * 1e9);
    }
    double worst_glibc = 0, worst_kahan = 0;
    for (int i = 0; i < N; i++) {
        double exact = log1p((double)x[i]);
        if (exact == 0)
            continue;
        double e1 = fabs(log1pf(x[i]) - exact) / exact, e2 = fabs(kahan_log1pf(x[i]) - exact) / exact;
        worst_glibc = e1 > worst_glibc ? e1 : worst_glibc;
        worst_kahan = e2 > worst_kahan ? e2 : worst_kahan;
    }
    printf("worst relative error: glibc log1pf %.3g, Kahan %.3g (float32 eps %.3g)\n", worst_glibc, worst_kahan,
           (double)1.1920929e-7f);
    (void)sink;
    return 0;
}
