"""GEMM in pure NumPy: the twin of csrc/gemm.h. Legend: op(A) is M x K, op(B) is K x N, C is M x N."""
from .._spec import kernel

__all__ = ["gemm"]


@kernel("C:M,N:out", "A:Ar,Ac", "B:Br,Bc")   # A, B are (M, K) / (K, N), or transposed: checked below
def gemm(C, A, B, trans_a=False, trans_b=False, alpha=1.0, beta=0.0):
    """C = alpha op(A) op(B) + beta C,  op(X) = X^T if trans_x else X  (C is not read when beta == 0)"""
    a = A.T if trans_a else A
    b = B.T if trans_b else B
    if a.shape[1] != b.shape[0] or C.shape != (a.shape[0], b.shape[1]):
        raise ValueError(f"gemm: shapes disagree: C {C.shape}, A {A.shape}{'^T' if trans_a else ''}, "
                         f"B {B.shape}{'^T' if trans_b else ''}")
    t = C.dtype.type
    product = t(alpha) * (a @ b)
    if beta == 0:
        C[...] = product
    else:
        C[...] = product + t(beta) * C
