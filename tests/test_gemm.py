"""fastnn's GEMM against NumPy in float64 and its twin: every product form, odd shapes, alpha/beta, the same bits
on 1 and 2 threads, and the portable micro-kernel (FASTNN_CPU=portable, in a subprocess)."""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import fastnn
from helpers import TOLERANCE, check_kernel, on_thread_counts

# (M, N, K): 1, sizes no micro-tile (6 x 16) or K block (256) divides, several K blocks, several tiles
# then narrow C (N < 8), computed transposed in 256-row blocks (one partial), K past one K block; last, C one
# micro-tile wide (N = 16), where op(B) = B is read in place as its own packed panel
SHAPES = [(1, 1, 1), (7, 13, 5), (33, 17, 65), (129, 257, 31), (50, 40, 600), (300, 290, 270), (600, 3, 20),
          (257, 7, 300), (32, 16, 4), (4, 16, 300)]
FORMS = [(False, False), (True, False), (False, True), (True, True)]   # C = A B, A^T B, A B^T, A^T B^T
SCALES = [(1.0, 0.0), (1.0, 1.0), (-0.5, 2.0)]                          # (alpha, beta)


def randn(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def operands(rng, M, N, K, trans_a, trans_b, dtype):
    A = randn(rng, (K, M) if trans_a else (M, K), dtype)
    B = randn(rng, (N, K) if trans_b else (K, N), dtype)
    return A, B


def formula(C, A, B, trans_a, trans_b, alpha, beta):
    """(expected C, the tolerance): max-relative, but on the scale of the terms summed, not of a result that
    cancelled (a 1 x 1 x 1 product plus beta C can land near 0)"""
    a, b = A.astype(np.float64), B.astype(np.float64)
    a, b = (a.T if trans_a else a), (b.T if trans_b else b)
    expect, terms = alpha * (a @ b), abs(alpha) * (abs(a) @ abs(b))
    if beta != 0:
        expect, terms = expect + beta * C, terms + abs(beta * C.astype(np.float64))
    return expect, TOLERANCE[np.dtype(C.dtype)] * max(1.0, terms.max() / abs(expect).max())


# W4-like wide products: BLAS's on the AVX2 and portable paths, fastnn's GEMM on the AVX-512 one (use_own_gemm)
WIDE_SHAPES = [(40, 1030, 1024), (1024, 1100, 24)]


@pytest.mark.parametrize("M,N,K", SHAPES + WIDE_SHAPES)
@pytest.mark.parametrize("trans_a,trans_b", FORMS, ids=["AB", "AtB", "ABt", "AtBt"])
@pytest.mark.parametrize("alpha,beta", SCALES)
def test_gemm(backend, dtype, threads, rng, M, N, K, trans_a, trans_b, alpha, beta):
    A, B = operands(rng, M, N, K, trans_a, trans_b, dtype)
    C = randn(rng, (M, N), dtype) if beta != 0 else np.full((M, N), np.nan, dtype)  # beta = 0: C is not read
    args = dict(C=C, A=A, B=B, trans_a=trans_a, trans_b=trans_b, alpha=alpha, beta=beta)
    expect, tol = formula(C, A, B, trans_a, trans_b, alpha, beta)
    check_kernel(backend, "gemm", args, {"C": expect}, tol)


def test_wide_products_go_to_blas_except_on_the_avx512_path():
    wide = "own" if fastnn._gemm.cpu_path() == "avx512" else "blas"
    assert fastnn._dense.gemm_rule(256, 4096, 4096, False, False, 2) == wide
    assert fastnn._dense.gemm_rule(4096, 4096, 256, True, False, 2) == wide
    assert fastnn._dense.gemm_rule(256, 1000, 4096, False, False, 2) == "own"   # N < 1024: ours on any path


@pytest.mark.parametrize("M,N,K", SHAPES + [(8192, 128, 784), (256, 1100, 1024), (1100, 40, 300)])
@pytest.mark.parametrize("trans_a,trans_b", FORMS, ids=["AB", "AtB", "ABt", "AtBt"])
def test_gemm_same_bits_on_1_and_2_threads(rng, dtype, M, N, K, trans_a, trans_b):
    """float32: fastnn's GEMM; float64: BLAS, in stripes of C over the threads (blas.pxd's gemm_striped)"""
    A, B = operands(rng, M, N, K, trans_a, trans_b, dtype)
    C0 = randn(rng, (M, N), dtype)

    def product():
        C = C0.copy()
        fastnn.get_backend("compiled").gemm(C, A, B, trans_a, trans_b, 0.75, 1.0)
        return C
    one, two, three = on_thread_counts(product)
    np.testing.assert_array_equal(two, one)
    np.testing.assert_array_equal(three, one)


@pytest.mark.parametrize("shift", [0, 1, 3])
def test_gemm_reads_a_one_panel_B_in_place_at_any_alignment(backend, rng, shift):
    """B (K x 16) is read where it lies, shift floats past an aligned address: no aligned loads of it"""
    M, N, K = 31, 16, 9
    A = randn(rng, (M, K), np.float32)
    buffer = randn(rng, (K * N + 8,), np.float32)
    B = buffer[shift:shift + K * N].reshape(K, N)
    C = randn(rng, (M, N), np.float32)
    expect, tol = formula(C, A, B, False, False, 1.0, 0.5)
    check_kernel(backend, "gemm", dict(C=C, A=A, B=B, trans_a=False, trans_b=False, alpha=1.0, beta=0.5),
                 {"C": expect}, tol)


def test_gemm_rejects_disagreeing_shapes(backend):
    C, A, B = np.zeros((3, 4), np.float32), np.zeros((3, 5), np.float32), np.zeros((6, 4), np.float32)
    with pytest.raises(ValueError, match="shapes disagree"):
        backend.gemm(C, A, B)
    with pytest.raises(ValueError, match="shapes disagree"):
        backend.gemm(C, A, B.T.copy(), trans_b=False)
    with pytest.raises(TypeError):
        backend.gemm(C, A.astype(np.float64), np.zeros((5, 4), np.float32))


def test_gemm_read_only_inputs_are_accepted(backend, dtype, rng):
    A, B = randn(rng, (9, 5), dtype), randn(rng, (5, 20), dtype)
    A.flags.writeable = B.flags.writeable = False
    C = np.empty((9, 20), dtype)
    backend.gemm(C, A, B)
    np.testing.assert_allclose(C, A.astype(np.float64) @ B, rtol=1e-5, atol=1e-5)


def test_gemm_concurrent_python_threads(rng):
    """Several Python threads in fastnn's GEMM at once (the GIL is released): each gets its own answer."""
    gemm = fastnn.get_backend("compiled").gemm
    jobs = [operands(rng, 150 + i, 70 + 3 * i, 300 - i, False, False, np.float32) for i in range(6)]
    expect = []
    for A, B in jobs:
        C = np.empty((A.shape[0], B.shape[1]), np.float32)
        gemm(C, A, B)
        expect.append(C)
    got = [None] * len(jobs)

    def work(i):
        A, B = jobs[i]
        for _ in range(5):
            C = np.empty((A.shape[0], B.shape[1]), np.float32)
            gemm(C, A, B)
        got[i] = C

    workers = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    for g, e in zip(got, expect):
        np.testing.assert_array_equal(g, e)


def test_cpu_path_is_reported():
    assert fastnn._gemm.cpu_path() in ("avx512", "avx2", "portable")
    if os.environ.get("FASTNN_CPU") == "portable":
        assert fastnn._gemm.cpu_path() == "portable"


@pytest.mark.parametrize("path", ["portable", "avx2"])
def test_other_paths_in_a_subprocess(path):
    """FASTNN_CPU=portable (avx2) selects the portable (AVX2) micro-kernel; the GEMM and dense tests pass on it
    too. The AVX2 one is tested this way only where the CPU also has AVX-512 (else it is the default path)."""
    if os.environ.get("FASTNN_CPU") == path or (path == "avx2" and fastnn._gemm.cpu_path() != "avx512"):
        pytest.skip(f"the {path} path is this process's own, or not there")
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, FASTNN_CPU=path)
    check = subprocess.run([sys.executable, "-c", "import fastnn._gemm as g, fastnn._dense; print(g.cpu_path())"],
                           env=env, capture_output=True, text=True, check=True)
    assert check.stdout.strip() == path
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                          os.path.join(here, "test_gemm.py"), os.path.join(here, "test_dense.py")],
                         env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
