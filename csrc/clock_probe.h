/* The core's clock, measured: a chain of dependent integer adds retires one add a cycle on every x86-64 and
   AArch64 core (each add waits for the previous one's result, 1 cycle of latency), so adds / seconds is the
   clock the core really runs at, turbo or not. A VM's /proc/cpuinfo reports the base clock, not that one.
   Compilers other than GCC/Clang, and other CPUs: unknown (-1). */
#ifndef FASTNN_CLOCK_PROBE_H
#define FASTNN_CLOCK_PROBE_H
#include <time.h>

#define FNN_CHAIN_ADDS 16   /* adds per loop turn: the counter and branch run beside the chain, on other ports */

static inline double fnn_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__aarch64__))
#define FNN_HAVE_CLOCK_PROBE 1
#if defined(__x86_64__)
#define FNN_ADD4 "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
#define FNN_LOOP "sub $1, %1\n\tjnz 1b\n\t"
#else
#define FNN_ADD4 "add %0, %0, #1\n\tadd %0, %0, #1\n\tadd %0, %0, #1\n\tadd %0, %0, #1\n\t"
#define FNN_LOOP "subs %1, %1, #1\n\tb.ne 1b\n\t"
#endif
/* GHz of this thread's core over `turns` x FNN_CHAIN_ADDS dependent adds */
static double fnn_add_chain_ghz(long turns)
{
    unsigned long x = 0;
    long n = turns;
    double t0, t1;
    if (turns < 1)
        return -1.0;
    t0 = fnn_now();
    __asm__ volatile("1:\n\t" FNN_ADD4 FNN_ADD4 FNN_ADD4 FNN_ADD4 FNN_LOOP : "+r"(x), "+r"(n) : : "cc");
    t1 = fnn_now();
    return t1 > t0 ? (double)x / (t1 - t0) * 1e-9 : -1.0;
}
#undef FNN_ADD4
#undef FNN_LOOP
#else
#define FNN_HAVE_CLOCK_PROBE 0
static double fnn_add_chain_ghz(long turns) { (void)turns; return -1.0; }
#endif
#endif
