"""Python face of fastnn's GEMM (see gemm.h, gemm.pxd): the `gemm` kernel, the CPU path in use, and a timing
hook for bench/gemm_crossover.py. Shapes are checked here too: never trust the caller."""
from cython cimport floating
from libc.stdint cimport int64_t
cimport dense
from gemm cimport own_gemm, fnn_gemm_init, fnn_cpu_path
from blas cimport gemm_striped
from time import perf_counter

from fastnn._config import get_num_threads
from fastnn._dense import blas_held

fnn_gemm_init()   # pick the micro-kernel for this CPU once, at import


def cpu_path():
    """The GEMM micro-kernel in use: "avx512" (AVX-512F), "avx2" (AVX2+FMA; forced by FASTNN_CPU=avx2) or
    "portable" (forced by FASTNN_CPU=portable)."""
    return fnn_cpu_path().decode()


cdef int _shapes(str name, const Py_ssize_t* c, const Py_ssize_t* a, const Py_ssize_t* b, bint trans_a,
                 bint trans_b, int* mnk) except -1:
    """mnk = (M, N, K) of C (M x N) = op(A) (M x K) op(B) (K x N), after checking they agree."""
    cdef Py_ssize_t M = a[1] if trans_a else a[0], K = a[0] if trans_a else a[1]
    cdef Py_ssize_t Kb = b[1] if trans_b else b[0], N = b[0] if trans_b else b[1]
    if K != Kb or c[0] != M or c[1] != N or M == 0 or N == 0 or K == 0:
        raise ValueError(f"{name}: shapes disagree: C ({c[0]}, {c[1]}), A ({a[0]}, {a[1]}){'^T' if trans_a else ''}, "
                         f"B ({b[0]}, {b[1]}){'^T' if trans_b else ''}")
    mnk[0], mnk[1], mnk[2] = M, N, K
    return 0


def gemm(floating[:, ::1] C not None, const floating[:, ::1] A not None, const floating[:, ::1] B not None,
         bint trans_a=False, bint trans_b=False, double alpha=1.0, double beta=0.0):
    """C = alpha op(A) op(B) + beta C,  op(X) = X^T if trans_x else X  (fastnn's GEMM for float32, BLAS for
    float64; C is not read when beta == 0)"""
    cdef int mnk[3]
    cdef int num_threads = get_num_threads()
    _shapes("gemm", C.shape, A.shape, B.shape, trans_a, trans_b, mnk)
    with blas_held(<double>mnk[0] * mnk[1] * mnk[2]), nogil:
        own_gemm(trans_a, trans_b, mnk[0], mnk[1], mnk[2], <floating>alpha, &A[0, 0], <int>A.shape[1],
                 &B[0, 0], <int>B.shape[1], <floating>beta, &C[0, 0], <int>C.shape[1], num_threads)


def time_gemm(str impl, int64_t reps, float[:, ::1] C not None, const float[:, ::1] A not None,
              const float[:, ::1] B not None, bint trans_a=False, bint trans_b=False, float alpha=1.0,
              float beta=0.0, int num_threads=1):
    """Benchmark hook: seconds per call over `reps` back-to-back float32 calls in one nogil loop (no Python
    between calls) of impl "own" (fastnn's GEMM), "blas" (scipy's sgemm in fastnn's stripes over num_threads, as dense.pxd calls it; hold OpenBLAS itself to
    1 thread around the call) or
    "dispatch" (dense.dense_gemm: whichever use_own_gemm picks, with gemm_threads)."""
    cdef int mnk[3]
    cdef int64_t r
    cdef int which = {"own": 0, "blas": 1, "dispatch": 2}[impl]
    _shapes("time_gemm", C.shape, A.shape, B.shape, trans_a, trans_b, mnk)
    cdef int lda = A.shape[1], ldb = B.shape[1], ldc = C.shape[1]
    t0 = perf_counter()
    with nogil:
        for r in range(reps):
            if which == 0:
                own_gemm(trans_a, trans_b, mnk[0], mnk[1], mnk[2], alpha, &A[0, 0], lda, &B[0, 0], ldb, beta,
                         &C[0, 0], ldc, num_threads)
            elif which == 1:
                gemm_striped(trans_a, trans_b, mnk[0], mnk[1], mnk[2], alpha, &A[0, 0], lda, &B[0, 0], ldb, beta,
                             &C[0, 0], ldc, num_threads)
            else:
                dense.dense_gemm(trans_a, trans_b, mnk[0], mnk[1], mnk[2], alpha, &A[0, 0], lda, &B[0, 0], ldb,
                                 beta, &C[0, 0], ldc, num_threads)
    return (perf_counter() - t0) / reps
