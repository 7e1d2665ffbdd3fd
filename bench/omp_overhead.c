/* What an OpenMP barrier and a fork/join cost on this machine, 2 threads: the figures behind the training
   step's region (bench/GEMM.md, "Session 3").
       gcc -O2 -fopenmp bench/omp_overhead.c -o /tmp/omp_overhead && /tmp/omp_overhead                     */
#include <omp.h>
#include <stdio.h>

int main(void)
{
    int rep;
    for (rep = 0; rep < 5; rep++) {
        double t0 = omp_get_wtime(), t1, t2;
#pragma omp parallel num_threads(2)
        for (int i = 0; i < 100000; i++) {     /* i declared here: each thread's own */
#pragma omp barrier
        }
        t1 = omp_get_wtime();
        for (int i = 0; i < 20000; i++) {
#pragma omp parallel num_threads(2)
            __asm__ volatile("");
        }
        t2 = omp_get_wtime();
        printf("barrier %.3f us, fork/join %.3f us\n", (t1 - t0) / 100000 * 1e6, (t2 - t1) / 20000 * 1e6);
    }
    return 0;
}
