/* fastnn's GEMM (csrc/gemm.h) checked on its own, without Python: for a CPU where the package cannot be tested
   yet (tools/aarch64_check.sh runs it under qemu-aarch64). For each shape, form and (alpha, beta), C from
   fnn_sgemm on 1 and 2 threads, and from fnn_sgemm_narrow for narrow C, against a float64 triple loop:
   relative error <= 1e-5 of the sum of |terms|, and the same bits on 1 and 2 threads. Exit status 0 if all pass.
   Legend: op(A) is M x K, op(B) is K x N, C is M x N, row-major. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "gemm.h"

static unsigned long long rng_state = 88172645463325252ULL;

static float uniform(void)           /* xorshift64: [-1, 1) */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((double)(rng_state >> 11) / 4503599627370496.0 - 1.0);
}

static float *random_matrix(size_t n)
{
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++)
        x[i] = uniform();
    return x;
}

/* worst |C - expected| / (sum of |terms| + |beta C0|) over C */
static double error_vs_formula(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                               const float *B, int ldb, float beta, const float *C0, const float *C)
{
    double worst = 0.0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double sum = 0.0, size = 0.0;
            for (int k = 0; k < K; k++) {
                double a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                double b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                sum += a * b;
                size += fabs(a * b);
            }
            double expect = alpha * sum + beta * (double)C0[(size_t)i * N + j];
            double scale = fabs(alpha) * size + fabs(beta * (double)C0[(size_t)i * N + j]) + 1e-30;
            double err = fabs((double)C[(size_t)i * N + j] - expect) / scale;
            if (err > worst)
                worst = err;
        }
    return worst;
}

int main(void)
{
    static const int shapes[][3] = {{1, 1, 1}, {7, 3, 5}, {6, 16, 8}, {13, 17, 19}, {32, 16, 4}, {64, 128, 64},
                                    {100, 10, 128}, {129, 257, 70}, {256, 3, 300}, {300, 40, 1030}};
    static const float scales[][2] = {{1.0f, 0.0f}, {0.75f, 1.0f}, {-1.5f, 0.5f}};
    int failures = 0, checks = 0;
    fnn_gemm_init();
    printf("micro-kernel: %s\n", fnn_cpu_path());
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int form = 0; form < 4; form++)
            for (size_t c = 0; c < sizeof scales / sizeof scales[0]; c++) {
                int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], ta = form & 1, tb = form >> 1;
                float alpha = scales[c][0], beta = scales[c][1];
                int lda = ta ? M : K, ldb = tb ? K : N;
                float *A = random_matrix((size_t)M * K), *B = random_matrix((size_t)K * N);
                float *C0 = random_matrix((size_t)M * N);
                float *C1 = malloc((size_t)M * N * sizeof *C1), *C2 = malloc((size_t)M * N * sizeof *C2);
                memcpy(C1, C0, (size_t)M * N * sizeof *C1);
                memcpy(C2, C0, (size_t)M * N * sizeof *C2);
                int rc = fnn_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C1, N, 1) |
                         fnn_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C2, N, 2);
                double err = error_vs_formula(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C0, C1);
                int same = memcmp(C1, C2, (size_t)M * N * sizeof *C1) == 0;
                int ok = rc == 0 && err <= 1e-5 && same;
                if (N < FNN_NARROW_N && M <= FNN_NARROW_M) {    /* the narrow path, on its own output */
                    memcpy(C2, C0, (size_t)M * N * sizeof *C2);
                    rc = fnn_sgemm_narrow(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C2, N);
                    double err_narrow = error_vs_formula(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C0, C2);
                    ok = ok && rc == 0 && err_narrow <= 1e-5;
                    if (err_narrow > err)
                        err = err_narrow;
                }
                checks++;
                if (!ok) {
                    failures++;
                    printf("FAIL %dx%dx%d trans_a=%d trans_b=%d alpha=%g beta=%g: rel err %.2e, same bits on 1 and 2 "
                           "threads: %s\n", M, N, K, ta, tb, alpha, beta, err, same ? "yes" : "no");
                }
                free(A), free(B), free(C0), free(C1), free(C2);
            }
    printf("%d of %d GEMM checks passed\n", checks - failures, checks);
    return failures != 0;
}
