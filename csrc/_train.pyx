"""Whole-epoch training and whole-network inference in C (see train.pxd for the layout).

`train_batches` runs batches [first, last) of one epoch with the GIL released: per batch it gathers the rows, runs
forward, loss, backward, the gradient checks (and clipping) and the optimizer step (in place; if one overflows, the
call's first state is restored and its good batches are run again), with no Python, no allocation and no call back
into NumPy. On several threads one OpenMP region runs all the batches. A small step (below PARALLEL_STEP_MIN_WORK)
is data-parallel: the batch is cut into row shards fixed by its shape, each thread runs a shard's forward and
backward alone, and the shards' gradients are added inside the optimizer step -- two barriers a step. A larger one
is shared out kernel by kernel: every thread takes its share of each product (dense.pxd's *_part) and of the step,
and the threads meet at a few barriers per layer. Either way the bits are the same on any thread count.
`predict_rows` runs the forward pass of every row block in parallel.
The callers (fastnn.mlp) own and size every buffer; the shapes are checked here once more before going nogil.
"""
from cython cimport floating
from cython.parallel cimport prange, parallel, threadid
from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memcpy, memset
from libc.math cimport sqrt, isfinite
cimport activations
cimport dense
cimport dropout
cimport losses
cimport optim
from threads cimport omp_get_num_threads, thread_share
from optim cimport NORM_BLOCK
from train cimport (Hyper, Net, SGD, ADAM, RMSPROP, ADAGRAD, SOFTMAX, SIGMOID, IDENTITY_OUTPUT,
                   TRAIN_OK, NONFINITE_LOSS, NONFINITE_GRADIENT, NONFINITE_STEP)

import numpy as np

optim.fnn_adam_init()   # adam.h: pick the AVX2 or baseline loops for this CPU once, at import


cdef int _optimizer_step(const Hyper* h, floating* params, floating* s0, floating* s1, floating* s2,
                         const floating* grads, Py_ssize_t P, int64_t step) noexcept nogil:
    """One torch.optim update of the flat params on the calling thread; s0..s2 are the optimizer's state buffers
    in its own order. Returns what became inf/NaN when the update's loop tells (Adam: bit 1 a gradient, bit 0 a
    new parameter or state), else -1: the caller checks."""
    if h.kind == SGD:
        optim.sgd_step(params, s0, grads, P, h.lr, h.momentum, h.dampening, h.weight_decay, h.nesterov,
                       h.maximize, step == 1, 1)
    elif h.kind == ADAM:
        return optim.adam_span(params, s0, s1, s2, grads, P, step, h.lr, h.beta1, h.beta2, h.eps, h.weight_decay,
                               h.amsgrad, h.maximize, h.decoupled)
    elif h.kind == RMSPROP:
        optim.rmsprop_step(params, s0, s1, s2, grads, P, h.lr, h.alpha, h.eps, h.weight_decay, h.momentum,
                           h.centered, h.maximize, 1)
    else:
        optim.adagrad_step(params, s0, grads, P, step, h.lr, h.lr_decay, h.weight_decay, h.eps, h.maximize, 1)
    return -1


cdef extern from "stream_copy.h" nogil:
    void fnn_stream_copy(void* dst, const void* src, size_t nbytes)

cdef enum:
    STREAM_MIN_BYTES = 1 << 22  # a checkpoint larger than this (the caches) is written with streaming stores


cdef void _checkpoint(floating* params, floating* s0, floating* s1, floating* s2, floating* saved, Py_ssize_t P,
                      bint restore, int num_threads) noexcept nogil:
    """params and the optimizer states in use (non-NULL) into saved, the k-th in use at k * P; restore: the other
    way. In parallel spans when large."""
    cdef floating* live[4]
    cdef int k, s, n = num_threads if num_threads > 1 and P >= optim.PARALLEL_MIN_P else 1
    cdef Py_ssize_t at, lo, hi
    cdef bint stream = P * sizeof(floating) >= STREAM_MIN_BYTES
    live[0], live[1], live[2], live[3] = params, s0, s1, s2
    for s in prange(n, num_threads=n, schedule='static'):
        lo, hi, at = s * P // n, (s + 1) * P // n, 0      # assigned here, so private to the thread
        for k in range(4):
            if live[k] != NULL:
                if restore:
                    memcpy(live[k] + lo, saved + at + lo, (hi - lo) * sizeof(floating))
                elif stream:    # read back only to restore (rare): not worth a cache line, nor a read for it
                    fnn_stream_copy(saved + at + lo, live[k] + lo, (hi - lo) * sizeof(floating))
                else:
                    memcpy(saved + at + lo, live[k] + lo, (hi - lo) * sizeof(floating))
                at = at + P


cdef inline floating* _shift(floating* a, Py_ssize_t lo) noexcept nogil:
    return a + lo if a != NULL else NULL


cdef inline void _add_in_place(floating* a, const floating* b, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        a[i] += b[i]


cdef int _step_block(const Hyper* h, floating* params, floating* s0, floating* s1, floating* s2,
                     floating* grads, const floating* grads_add, Py_ssize_t lo, Py_ssize_t n, int64_t step,
                     bint check_grads) noexcept nogil:
    """Elements [lo, lo + n) of the optimizer step, while they are in cache: add grads_add (the other row shard's
    gradient, or NULL) into grads, update them in place, and return NONFINITE_GRADIENT if check_grads and any of
    their gradients is inf/NaN, else NONFINITE_STEP if any of them (params or state) became inf/NaN, else
    TRAIN_OK"""
    cdef int bad, k
    cdef floating* states[3]
    if grads_add != NULL:
        _add_in_place(grads + lo, grads_add + lo, n)
    bad = _optimizer_step(h, params + lo, _shift(s0, lo), _shift(s1, lo), _shift(s2, lo), grads + lo, n, step)
    if bad < 0:                 # the update's loop did not check: check here, while the block is in cache
        bad = optim.any_nonfinite(params + lo, n)
        if check_grads:
            bad |= 2 * optim.any_nonfinite(grads + lo, n)
        states[0], states[1], states[2] = s0, s1, s2
        for k in range(3):
            if states[k] != NULL:
                bad |= optim.any_nonfinite(states[k] + lo, n)
    if check_grads and bad & 2:
        return NONFINITE_GRADIENT
    return NONFINITE_STEP if bad & 1 else TRAIN_OK


cdef inline int _worse(int status, int flag) noexcept nogil:
    """The status to report of two: a non-finite gradient before an overflowing step, either before TRAIN_OK"""
    return flag if flag == NONFINITE_GRADIENT or status == TRAIN_OK else status


cdef int _step_range(const Hyper* h, floating* params, floating* s0, floating* s1, floating* s2,
                     floating* grads, const floating* grads_add, Py_ssize_t lo, Py_ssize_t hi, int64_t step,
                     bint check_grads) noexcept nogil:
    """Elements [lo, hi) of the optimizer step, in blocks of NORM_BLOCK, each updated in place and checked while
    in cache; returns the worst block's TrainStatus (a non-finite gradient before an overflowing step). A finite
    gradient can still overflow the step (a huge lr); with check_grads an inf/NaN gradient is caught here, sparing
    a pass over the gradients before the step. A step that did not stand has changed some blocks: train_batches
    restores its checkpoint and runs the good batches again. The elements are independent: the same bits in any
    ranges."""
    cdef Py_ssize_t b = lo
    cdef int status = TRAIN_OK
    while b < hi:
        status = _worse(status, _step_block(h, params, s0, s1, s2, grads, grads_add, b,
                                            min(<Py_ssize_t>NORM_BLOCK, hi - b), step, check_grads))
        b += NORM_BLOCK
    return status


cdef uint64_t _network_forward(int tid, int nth, const Net* net, const floating* params, const floating* x,
                               Py_ssize_t r0, int nb, Py_ssize_t B, floating* pre, floating* post, floating* mask,
                               floating* dropped, uint64_t seed, uint64_t stream, bint train) noexcept nogil:
    """Thread tid's share (of nth in the caller's parallel region; 0 of 1 alone) of the forward pass of rows
    [r0, r0 + nb) of the batch whose B rows x and the workspaces hold: pre_l = a_{l-1} W_l + b_l; post_l = f(pre_l)
    for the hidden layers (then dropout, when training, from dropout stream `stream` on); the last layer writes
    only its logits pre_{L-1}. Returns, when every thread is done, the dropout stream after the ones it drew."""
    cdef int l, I, O
    cdef Py_ssize_t at, rows, lo, hi
    cdef const floating* a = x + r0 * net.sizes[0]
    cdef const floating* W
    for l in range(net.L):
        I, O, at = net.sizes[l], net.sizes[l + 1], B * net.starts[l]
        rows = at + r0 * O
        W = params + net.offsets[l]
        if l == net.L - 1:
            dense.dense_forward_part(tid, nth, pre + rows, <floating*>NULL, a, W, W + <Py_ssize_t>I * O, nb, I, O,
                                     activations.IDENTITY, 0)
            return stream
        dense.dense_forward_part(tid, nth, pre + rows, post + rows, a, W, W + <Py_ssize_t>I * O, nb, I, O,
                                 net.activation, net.activation_param)
        a = post + rows
        if train and net.dropout[l] > 0:    # element i of the batch's block draws key + i: any rows, same bits
            thread_share(tid, nth, <Py_ssize_t>nb * O, 1, &lo, &hi)
            dropout.dropout_range(dropped + at, mask + at, post + at, r0 * O + lo, r0 * O + hi, net.dropout[l],
                                  seed, stream)
            stream += 1
            dense._barrier(nth)
            a = dropped + rows
    return stream


cdef inline void _multiply_in_place(floating* a, const floating* m, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        a[i] *= m[i]


cdef void _network_backward(int tid, int nth, const Net* net, const floating* params, floating* grads,
                            const floating* xb, Py_ssize_t r0, int nb, Py_ssize_t B, floating* pre, floating* post,
                            floating* dpre, floating* dpost, const floating* mask,
                            const floating* dropped) noexcept nogil:
    """Thread tid's share of the backward pass of rows [r0, r0 + nb) of the batch, from the loss gradient in
    dpre's last block: every layer's dW and db into grads (+=), and d(post) of the layers below"""
    cdef int L = net.L, l, I, O
    cdef Py_ssize_t at, below, q0, q1
    cdef floating* dW
    cdef floating* dx
    cdef const floating* x
    thread_share(tid, nth, nb, 1, &q0, &q1)       # its rows of the element-wise dropout product
    for l in range(L - 1, -1, -1):
        I, O, at = net.sizes[l], net.sizes[l + 1], B * net.starts[l] + r0 * net.sizes[l + 1]
        dW = grads + net.offsets[l]
        if l > 0:               # the layer's input is the previous layer's (dropped) activation
            below = B * net.starts[l - 1] + r0 * I
            x = (dropped if net.dropout[l - 1] > 0 else post) + below
            dx = dpost + below
        else:
            x, dx = xb + r0 * I, NULL
        dense.dense_backward_part(tid, nth, dx, dW, dW + <Py_ssize_t>I * O, dpre + at,
                                  dpost + at if l < L - 1 else <floating*>NULL, x, params + net.offsets[l],
                                  pre + at, post + at, nb, I, O, net.activation if l < L - 1 else -1,
                                  net.activation_param)
        if l > 0 and net.dropout[l - 1] > 0:     # d(post) = d(dropped) * mask, in place: its rows
            _multiply_in_place(dx + q0 * I, mask + below + q0 * I, (q1 - q0) * I)
            dense._barrier(nth)


cdef void _gather_rows(const floating* X, const int64_t* classes, const floating* targets,
                       const floating* weights, const int64_t* order, Py_ssize_t r0, Py_ssize_t r1, int I0, int OL,
                       floating* xb, int64_t* cb, floating* tb, floating* wb) noexcept nogil:
    """Rows [r0, r1) of the batch whose sample indices are order[0..]: into the batch buffers"""
    cdef Py_ssize_t r, idx
    for r in range(r0, r1):
        idx = order[r]
        memcpy(xb + r * I0, X + idx * I0, I0 * sizeof(floating))
        if classes != NULL:
            cb[r] = classes[idx]
        else:
            memcpy(tb + r * OL, targets + idx * OL, OL * sizeof(floating))
        if weights != NULL:
            wb[r] = weights[idx]


cdef void _accumulate_metric(int loss, const floating* out, const int64_t* classes, const floating* targets,
                             const floating* weights, int nb, int O, double* metric) noexcept nogil:
    """The running training metric: weighted correct rows (classification; every label right for multi-label),
    or per output sum w (y - yhat)^2, sum w y, sum w y^2 (regression, for R^2)"""
    cdef int r, o
    cdef bint ok
    cdef double w, y, d
    cdef const floating* row
    cdef int64_t hits = 0
    if metric == NULL:          # a replay (train_batches): the metric has counted these rows already
        return
    if loss == losses.CROSS_ENTROPY and weights == NULL:
        # an integer count, added once: the same bits as adding 1.0 a hit (exact below 2^53), without a
        # store-to-load chain through metric[0] from row to row
        for r in range(nb):
            hits += losses.argmax(out + <Py_ssize_t>r * O, O) == classes[r]
        metric[0] += hits
        return
    for r in range(nb):
        w = weights[r] if weights != NULL else 1.0
        row = out + <Py_ssize_t>r * O
        if loss == losses.CROSS_ENTROPY:
            metric[0] += w * (losses.argmax(row, O) == classes[r])
        elif loss == losses.BINARY_CROSS_ENTROPY:
            ok = True
            for o in range(O):
                ok = ok and ((row[o] >= 0.5) == (targets[<Py_ssize_t>r * O + o] >= 0.5))
            metric[0] += w * ok
        else:
            for o in range(O):
                y = targets[<Py_ssize_t>r * O + o]
                d = y - row[o]
                metric[3 * o] += w * d * d
                metric[3 * o + 1] += w * y
                metric[3 * o + 2] += w * y * y


cdef int _clip(int tid, int nth, floating* grads, Py_ssize_t P, double* partial, Py_ssize_t p_lo, Py_ssize_t p_hi,
               double clip_norm) noexcept nogil:
    """Thread tid's part of clipping the gradient's global norm to clip_norm (its elements [p_lo, p_hi)); returns
    NONFINITE_GRADIENT (on every thread) if the norm is not finite, else TRAIN_OK"""
    cdef Py_ssize_t nblocks = optim.norm_blocks(P)
    cdef double normsq, coef
    optim.norm_partials(grads, P, partial, tid * nblocks // nth, (tid + 1) * nblocks // nth)
    dense._barrier(nth)
    normsq = optim.sum_partials(partial, nblocks)   # in order: the same sum on any thread count
    dense._barrier(nth)             # all have read partial before the next batch writes it
    if not isfinite(normsq):
        return NONFINITE_GRADIENT
    coef = optim.clip_coefficient(sqrt(normsq), clip_norm)
    if coef < 1:
        optim.scale_in_place(grads + p_lo, p_hi - p_lo, <floating>coef, 1)
    return TRAIN_OK


cdef inline int _worst(const int* flags, int count) noexcept nogil:
    cdef int k, status = TRAIN_OK
    for k in range(count):
        status = _worse(status, flags[k])
    return status


cdef int _step_all(int tid, int nth, int* flags, const Hyper* h, floating* params,
                   floating* s0, floating* s1, floating* s2, floating* grads, const floating* grads_add,
                   Py_ssize_t p_lo, Py_ssize_t p_hi, int64_t done_steps, bint check_grads,
                   Py_ssize_t batch, Py_ssize_t* bad_batch, double loss, double wsum, int64_t* step,
                   double* loss_sum, double* weight_sum) noexcept nogil:
    """Thread tid's range [p_lo, p_hi) of the batch's optimizer step (see _step_range; flags: one per thread),
    then, after a barrier, the worst status of all the threads': if the step did not stand bad_batch names the
    batch (train_batches restores the state before it), else thread 0 counts the step and the batch's loss"""
    cdef int status
    flags[tid] = _step_range(h, params, s0, s1, s2, grads, grads_add, p_lo, p_hi, done_steps + 1, check_grads)
    dense._barrier(nth)
    status = _worst(flags, nth)
    if status != TRAIN_OK:
        if tid == 0:
            bad_batch[0] = batch
    elif tid == 0:
        step[0] = done_steps + 1
        loss_sum[0] += loss * wsum
        weight_sum[0] += wsum
    return status


cdef enum:
    # multiply-adds per training step (3 B sum_l I_l O_l) from this on: the step is shared out kernel by kernel
    # (_train_part); below it, row shards or one thread (SHARD_MIN_WORK). On this 2-vCPU machine
    # (python bench/train_threads.py W2 / W3) W2's 1.8M ran, kernel by kernel, no faster on 2 threads than on 1 (best of 20 epochs
    # 0.73M vs 0.79M samples/s; medians within noise), W3's 90M 1.4x faster (medians). The per-product rule
    # (dense.pxd's SERIAL_MAX_WORK) is the same 2^22.
    PARALLEL_STEP_MIN_WORK = 1 << 22
    MAX_STEP_THREADS = 256              # threads of the training step's region (its flags live on the stack)
    # a smaller step of at least SHARD_MIN_WORK, of a batch of at least SHARD_MIN_BATCH rows, is data-parallel
    # (_train_shards_part): SHARDS row shards whatever the thread count, one per thread on this 2-core machine.
    # Measured (python bench/train_ab.py W2 1,2 5 before/src src, 5 rounds): W2's 1.8M multiply-adds 1.38x faster
    # on 2 threads than the whole step on one thread (before), 0.88x on 1 (the shards pack W twice); W1's 1.1e4 1.01x and 0.92x,
    # so it stays whole
    SHARDS = 2
    SHARD_MIN_BATCH = 16
    SHARD_MIN_WORK = 1 << 18


cdef extern from "gemm.h":
    enum: FNN_MR                        # the micro-tile's rows: a shard has at least this many


cdef double _step_work(const int* sizes, int L, Py_ssize_t B) noexcept nogil:
    """Multiply-adds of one training step: 3 B sum_l I_l O_l"""
    cdef double work = 0
    cdef int l
    for l in range(L):
        work += 3.0 * B * sizes[l] * sizes[l + 1]
    return work


cdef int _step_shards(const int* sizes, int L, Py_ssize_t B) noexcept nogil:
    """Row shards of a training step of this shape (1: the step is shared out kernel by kernel, _train_part)"""
    cdef double work = _step_work(sizes, L, B)
    return SHARDS if SHARD_MIN_WORK <= work < PARALLEL_STEP_MIN_WORK and B >= SHARD_MIN_BATCH else 1


def step_shards(const int[::1] sizes not None, Py_ssize_t batch_size):
    """The row shards the training step of these layer sizes and batch size is cut into; each shard after the
    first needs a gradient buffer of its own (train_batches' shard_grads)"""
    if sizes.shape[0] < 2 or batch_size < 1:
        raise ValueError(f"step_shards: {sizes.shape[0]} layer sizes, batch {batch_size}")
    return _step_shards(&sizes[0], <int>sizes.shape[0] - 1, batch_size)


cdef int _train_part(int tid, int nth, int* flags,
                     const Net* net, const Hyper* h,
                     floating* params, floating* grads,                       # IN/OUT (P,)
                     floating* s0, floating* s1, floating* s2,                # IN/OUT (P,) optimizer state or NULL
                     const floating* X, const int64_t* classes,               # IN (n, I0); (n,) or NULL
                     const floating* targets, const floating* weights,        # IN (n, O_L) or NULL; (n,) or NULL
                     const int64_t* order, Py_ssize_t n,                      # IN (n,) this epoch's sample order
                     floating* xb, int64_t* cb, floating* tb, floating* wb,   # workspace: the batch's rows
                     floating* pre, floating* post, floating* dpre, floating* dpost,
                     floating* mask, floating* dropped, double* partial,      # workspace
                     double* metric,                                          # IN/OUT running metric sums
                     Py_ssize_t B, Py_ssize_t first, Py_ssize_t last,
                     uint64_t seed, uint64_t* stream, int64_t* step, double clip_norm,
                     double* loss_sum, double* weight_sum, Py_ssize_t* bad_batch) noexcept nogil:
    """Thread tid's part (of nth in train_batches' parallel region; 0 of 1 alone) of batches first..last-1:
    forward, loss, backward, norm check/clip, optimizer step. The products and element-wise work are shared out
    as dense.pxd's *_part kernels share them, the optimizer step by ranges of the parameters; the loss (a few
    rows) and the bookkeeping are thread 0's, which alone writes the outputs (stream, step, sums, bad_batch).
    Every thread returns the same TrainStatus; on a non-finite loss, gradient or step the batch is not applied
    and bad_batch names it; after a step that did not stand, train_batches restores params and state."""
    cdef int L = net.L, I0 = net.sizes[0], OL = net.sizes[L], nb, status
    cdef Py_ssize_t batch, lo, r0, r1, out_at = B * net.starts[L - 1], p_lo, p_hi, w_lo, w_hi
    cdef Py_ssize_t workspace = B * (net.starts[L - 1] + OL)
    cdef double loss = 0, wsum = 0
    cdef int64_t local_step = step[0]
    cdef uint64_t local_stream = stream[0]
    cdef const int64_t* batch_classes = cb if classes != NULL else NULL
    cdef const floating* batch_targets = tb if classes == NULL else NULL
    cdef const floating* batch_weights = wb if weights != NULL else NULL
    thread_share(tid, nth, net.P, 16, &p_lo, &p_hi)           # this thread's parameters: zeroed, stepped
    thread_share(tid, nth, workspace, 16, &w_lo, &w_hi)
    for batch in range(first, last):
        lo = batch * B
        nb = <int>min(B, n - lo)
        # its rows of the batch, gathered into the batch buffers; its parts of the gradients (every gradient
        # accumulates) and of the workspaces zeroed
        thread_share(tid, nth, nb, 1, &r0, &r1)
        _gather_rows(X, classes, targets, weights, order + lo, r0, r1, I0, OL, xb, cb, tb, wb)
        memset(grads + p_lo, 0, (p_hi - p_lo) * sizeof(floating))
        memset(dpre + w_lo, 0, (w_hi - w_lo) * sizeof(floating))
        memset(dpost + w_lo, 0, (w_hi - w_lo) * sizeof(floating))
        dense._barrier(nth)
        local_stream = _network_forward(tid, nth, net, params, xb, 0, nb, B, pre, post, mask, dropped, seed,
                                        local_stream, True)
        if tid == 0:
            stream[0] = local_stream
            wsum = losses.weight_sum(batch_weights, nb)    # now: after the last barrier, wb is the next batch's
            loss = losses.loss_mean(net.loss, losses.loss_total(net.loss, post + out_at, pre + out_at, batch_classes,
                                                                batch_targets, batch_weights, nb, OL,
                                                                <floating>net.delta), wsum, OL)
            flags[0] = TRAIN_OK if isfinite(loss) else NONFINITE_LOSS
            if flags[0] == TRAIN_OK:
                _accumulate_metric(net.loss, post + out_at, batch_classes, batch_targets, batch_weights, nb, OL,
                                   metric)
                losses.loss_backward_rows(net.loss, dpre + out_at, post + out_at, batch_classes, batch_targets,
                                          batch_weights, nb, OL, <floating>net.delta, wsum)
        dense._barrier(nth)
        status = flags[0]
        dense._barrier(nth)     # all have read flags[0] before anyone writes it again
        if status != TRAIN_OK:
            if tid == 0:
                bad_batch[0] = batch
            return status
        _network_backward(tid, nth, net, params, grads, xb, 0, nb, B, pre, post, dpre, dpost, mask, dropped)
        if clip_norm > 0 and _clip(tid, nth, grads, net.P, partial, p_lo, p_hi, clip_norm) != TRAIN_OK:
            if tid == 0:
                bad_batch[0] = batch
            return NONFINITE_GRADIENT
        status = _step_all(tid, nth, flags, h, params, s0, s1, s2, grads, NULL, p_lo, p_hi, local_step,
                           clip_norm <= 0, batch, bad_batch, loss, wsum, step, loss_sum, weight_sum)
        dense._barrier(nth)     # all have read the flags before anyone writes them again
        if status != TRAIN_OK:
            return status
        local_step += 1
    return TRAIN_OK


cdef double _batch_weight_sum(const floating* weights, const int64_t* order, int nb) noexcept nogil:
    """The batch's weight sum, rows in order (losses.weight_sum's bits), read through the sample order"""
    cdef double total = 0
    cdef int r
    if weights == NULL:
        return nb
    for r in range(nb):
        total += weights[order[r]]
    return total


cdef int _train_shards_part(int tid, int nth, int* flags, double* shard_loss,
                            const Net* net, const Hyper* h,
                            floating* params, floating* grads,                 # IN/OUT (P,)
                            floating* shard_grads,                             # workspace (P,): shard 1's gradient
                            floating* s0, floating* s1, floating* s2,          # IN/OUT (P,) optimizer state or NULL
                            const floating* X, const int64_t* classes,         # IN (n, I0); (n,) or NULL
                            const floating* targets, const floating* weights,  # IN (n, O_L) or NULL; (n,) or NULL
                            const int64_t* order, Py_ssize_t n,                # IN (n,) this epoch's sample order
                            floating* xb, int64_t* cb, floating* tb, floating* wb,
                            floating* pre, floating* post, floating* dpre, floating* dpost,
                            floating* mask, floating* dropped, double* partial,
                            double* metric,                                    # IN/OUT running metric sums
                            double* shard_metric,                              # workspace (SHARDS, 3 O_L)
                            Py_ssize_t B, Py_ssize_t first, Py_ssize_t last,
                            uint64_t seed, uint64_t* stream, int64_t* step, double clip_norm,
                            double* loss_sum, double* weight_sum, Py_ssize_t* bad_batch) noexcept nogil:
    """Thread tid's part (of nth <= SHARDS) of batches first..last-1, data-parallel: each batch is cut into row
    shards fixed by its row count, and shard s is thread s % nth's: gather, forward, loss, metric and backward of
    its rows alone (no barrier), into its own gradient buffer (shard 0's is grads). After one barrier every thread
    steps its range of the parameters, adding the shards' gradients first (in order, in cache); after a second,
    the step is checked. The shards and the order of their sums are the batch's, so the bits are the same on any
    thread count. Outputs and statuses as _train_part's."""
    cdef int L = net.L, I0 = net.sizes[0], OL = net.sizes[L], M = 3 * OL, nb, ns, s, l, O, status, drops = 0
    cdef Py_ssize_t batch, lo, k, r0, r1, rows, at, out_at = B * net.starts[L - 1], p_lo, p_hi
    cdef double wsum, total, loss = 0
    cdef int64_t local_step = step[0]
    cdef uint64_t local_stream = stream[0]
    cdef floating* g
    cdef const floating* w
    cdef const floating* add
    for l in range(L - 1):
        drops += net.dropout[l] > 0
    thread_share(tid, nth, net.P, 16, &p_lo, &p_hi)           # this thread's parameters: stepped
    for batch in range(first, last):
        lo = batch * B
        nb = <int>min(B, n - lo)
        ns = max(1, min(<int>SHARDS, nb // <int>FNN_MR))      # no shard without a whole micro-tile of rows
        wsum = _batch_weight_sum(weights, order + lo, nb)      # every shard's loss gradient is the batch mean's
        s = tid - nth
        while s + nth < ns:    # its shards: tid, tid + nth, ...
            s += nth
            thread_share(s, ns, nb, 1, &r0, &r1)   # even: the slower shard sets the pace
            rows = r1 - r0
            g = grads if s == 0 else shard_grads
            _gather_rows(X, classes, targets, weights, order + lo, r0, r1, I0, OL, xb, cb, tb, wb)
            memset(g, 0, net.P * sizeof(floating))              # every gradient accumulates
            for l in range(L):
                O = net.sizes[l + 1]
                at = B * net.starts[l] + r0 * O
                memset(dpre + at, 0, rows * O * sizeof(floating))
                memset(dpost + at, 0, rows * O * sizeof(floating))
            _network_forward(0, 1, net, params, xb, r0, <int>rows, B, pre, post, mask, dropped, seed, local_stream,
                             True)
            at = out_at + r0 * OL
            w = wb + r0 if weights != NULL else NULL
            total = losses.loss_total(net.loss, post + at, pre + at, cb + r0 if classes != NULL else NULL,
                                      tb + r0 * OL if classes == NULL else NULL, w, <int>rows, OL,
                                      <floating>net.delta)
            shard_loss[s] = total
            flags[s] = TRAIN_OK if isfinite(total) else NONFINITE_LOSS
            if flags[s] == TRAIN_OK:
                memset(shard_metric + s * M, 0, M * sizeof(double))
                _accumulate_metric(net.loss, post + at, cb + r0 if classes != NULL else NULL,
                                   tb + r0 * OL if classes == NULL else NULL, w, <int>rows, OL, shard_metric + s * M)
                losses.loss_backward_rows(net.loss, dpre + at, post + at, cb + r0 if classes != NULL else NULL,
                                          tb + r0 * OL if classes == NULL else NULL, w, <int>rows, OL,
                                          <floating>net.delta, wsum)
                _network_backward(0, 1, net, params, g, xb, r0, <int>rows, B, pre, post, dpre, dpost, mask,
                                  dropped)
        local_stream += drops
        dense._barrier(nth)
        # the shards' flags, losses and metric sums are read here and written again only after the next barrier
        status = _worst(flags, ns)
        if tid == 0:
            stream[0] = local_stream
        if status != TRAIN_OK:
            if tid == 0:
                bad_batch[0] = batch
            return status
        if tid == 0:
            total = 0
            for s in range(ns):
                total += shard_loss[s]
                for k in range(M if metric != NULL else 0):
                    metric[k] += shard_metric[s * M + k]
            loss = losses.loss_mean(net.loss, total, wsum, OL)
        add = shard_grads if ns > 1 else NULL
        if clip_norm > 0:       # the norm needs the whole gradient first
            if add != NULL:
                _add_in_place(grads + p_lo, add + p_lo, p_hi - p_lo)
                dense._barrier(nth)
                add = NULL
            if _clip(tid, nth, grads, net.P, partial, p_lo, p_hi, clip_norm) != TRAIN_OK:
                if tid == 0:
                    bad_batch[0] = batch
                return NONFINITE_GRADIENT
        # its flags are written again only after the next batch's first barrier
        status = _step_all(tid, nth, flags + SHARDS, h, params, s0, s1, s2, grads, add, p_lo, p_hi, local_step,
                           clip_norm <= 0, batch, bad_batch, loss, wsum, step, loss_sum, weight_sum)
        if status != TRAIN_OK:
            return status
        local_step += 1
    return TRAIN_OK


cdef int _run_batches(const Net* net, const Hyper* h, floating* params, floating* grads,
                      floating* s0, floating* s1, floating* s2, const floating* X, const int64_t* classes,
                      const floating* targets, const floating* weights, const int64_t* order, Py_ssize_t n,
                      floating* xb, int64_t* cb, floating* tb, floating* wb,
                      floating* pre, floating* post, floating* dpre, floating* dpost,
                      floating* mask, floating* dropped, double* partial, double* metric,
                      floating* shard_grads, double* shard_metric,
                      Py_ssize_t B, Py_ssize_t first, Py_ssize_t last,
                      uint64_t seed, uint64_t* stream, int64_t* step, double clip_norm,
                      double* loss_sum, double* weight_sum, Py_ssize_t* bad_batch,
                      int num_threads) noexcept nogil:
    """Batches first..last-1: a small step data-parallel (_train_shards_part), a larger one shared out kernel by
    kernel (_train_part); either in one parallel region for all the batches, the threads meeting at barriers
    (two a step, or a few per layer) instead of a fork/join per kernel."""
    cdef int flags[MAX_STEP_THREADS + 1]      # one per thread (and shard), and the status
    cdef double shard_loss[SHARDS]
    cdef int status = TRAIN_OK, tid = 0, nth = min(num_threads, <int>MAX_STEP_THREADS)
    cdef bint sharded = _step_shards(net.sizes, net.L, B) > 1
    if sharded:
        nth = min(nth, <int>SHARDS)
    elif _step_work(net.sizes, net.L, B) < PARALLEL_STEP_MIN_WORK:
        nth = 1
    if nth > 1:
        with parallel(num_threads=nth):
            tid = threadid()
            if sharded:
                status = _train_shards_part(tid, omp_get_num_threads(), flags, shard_loss, net, h, params, grads,
                                            shard_grads, s0, s1, s2, X, classes, targets, weights, order, n, xb,
                                            cb, tb, wb, pre, post, dpre, dpost, mask, dropped, partial, metric,
                                            shard_metric, B, first, last, seed, stream, step, clip_norm, loss_sum,
                                            weight_sum, bad_batch)
            else:
                status = _train_part(tid, omp_get_num_threads(), flags, net, h, params, grads, s0, s1, s2, X,
                                     classes, targets, weights, order, n, xb, cb, tb, wb, pre, post, dpre, dpost,
                                     mask, dropped, partial, metric, B, first, last, seed, stream, step, clip_norm,
                                     loss_sum, weight_sum, bad_batch)
            if tid == 0:
                flags[MAX_STEP_THREADS] = status
        return flags[MAX_STEP_THREADS]
    if sharded:
        return _train_shards_part(0, 1, flags, shard_loss, net, h, params, grads, shard_grads, s0, s1, s2, X,
                                  classes, targets, weights, order, n, xb, cb, tb, wb, pre, post, dpre, dpost, mask,
                                  dropped, partial, metric, shard_metric, B, first, last, seed, stream, step,
                                  clip_norm, loss_sum, weight_sum, bad_batch)
    return _train_part(0, 1, flags, net, h, params, grads, s0, s1, s2, X, classes, targets, weights, order, n,
                       xb, cb, tb, wb, pre, post, dpre, dpost, mask, dropped, partial, metric, B, first,
                       last, seed, stream, step, clip_norm, loss_sum, weight_sum, bad_batch)


cdef int _train_batches(const Net* net, const Hyper* h, floating* params, floating* grads,
                        floating* s0, floating* s1, floating* s2, const floating* X, const int64_t* classes,
                        const floating* targets, const floating* weights, const int64_t* order, Py_ssize_t n,
                        floating* xb, int64_t* cb, floating* tb, floating* wb,
                        floating* pre, floating* post, floating* dpre, floating* dpost,
                        floating* mask, floating* dropped, double* partial, floating* saved, double* metric,
                        floating* shard_grads, double* shard_metric,
                        Py_ssize_t B, Py_ssize_t first, Py_ssize_t last,
                        uint64_t seed, uint64_t* stream, int64_t* step, double clip_norm,
                        double* loss_sum, double* weight_sum, Py_ssize_t* bad_batch,
                        int num_threads) noexcept nogil:
    """_run_batches, from a checkpoint of params and state in `saved` (one copy a call, not one a step). A step
    that did not stand (an inf/NaN gradient caught inside it, or an overflow) has changed some blocks in place: the
    checkpoint is restored and batches first..bad-1 run again, with the same bits (the loop is deterministic), but
    without adding to the metric and loss sums a second time; the dropout stream and bad_batch are the failed
    run's."""
    cdef int status
    cdef int64_t step0 = step[0]
    cdef uint64_t stream0 = stream[0], failed_stream
    cdef Py_ssize_t failed_batch
    cdef double no_sum = 0
    _checkpoint(params, s0, s1, s2, saved, net.P, False, num_threads)
    status = _run_batches(net, h, params, grads, s0, s1, s2, X, classes, targets, weights, order, n, xb, cb, tb, wb,
                          pre, post, dpre, dpost, mask, dropped, partial, metric, shard_grads, shard_metric, B,
                          first, last, seed, stream, step, clip_norm, loss_sum, weight_sum, bad_batch, num_threads)
    # with clipping the gradient is checked (by its norm) before the step, which then changed nothing
    if status == NONFINITE_STEP or (status == NONFINITE_GRADIENT and clip_norm <= 0):
        failed_stream, failed_batch = stream[0], bad_batch[0]
        _checkpoint(params, s0, s1, s2, saved, net.P, True, num_threads)
        stream[0], step[0] = stream0, step0
        if _run_batches(net, h, params, grads, s0, s1, s2, X, classes, targets, weights, order, n, xb, cb, tb, wb,
                        pre, post, dpre, dpost, mask, dropped, partial, NULL, shard_grads, shard_metric, B, first,
                        failed_batch, seed, stream, step, clip_norm, &no_sum, &no_sum, bad_batch,
                        num_threads) != TRAIN_OK:
            return NONFINITE_STEP       # cannot happen: the same batches stood the first time
        stream[0], bad_batch[0] = failed_stream, failed_batch
    return status


cdef void _predict_output(const Net* net, int output, floating* pre, Py_ssize_t block, int nb,
                          floating* out) noexcept nogil:
    """out (nb, O_L) = the output activation of the logits in pre's last layer block"""
    cdef int OL = net.sizes[net.L]
    cdef floating* logits = pre + block * net.starts[net.L - 1]
    if output == SOFTMAX:
        losses.softmax_forward(out, logits, nb, OL)
    elif output == SIGMOID:
        activations.sigmoid_forward(out, logits, <Py_ssize_t>nb * OL)
    else:
        memcpy(out, logits, <Py_ssize_t>nb * OL * sizeof(floating))


cdef void _predict_rows(const Net* net, int output, const floating* params, const floating* X, Py_ssize_t N,
                        Py_ssize_t block, floating* pre, floating* post, floating* out, Py_ssize_t per_thread,
                        int num_threads) noexcept nogil:
    """Blocks of `block` rows; in parallel over blocks (each thread its own workspace slice, one thread on each)
    when there are several and float32 takes fastnn's GEMM; else one block at a time, all threads on it. Each
    row's result depends on nothing but the row: the same bits either way."""
    cdef Py_ssize_t b, lo, nblocks = (N + block - 1) // block
    cdef int t, nb, I0 = net.sizes[0], OL = net.sizes[net.L]
    cdef int threads = <int>min(<Py_ssize_t>num_threads, nblocks)
    if floating is float and threads > 1:
        for b in prange(nblocks, num_threads=threads, schedule='static'):
            t = threadid()
            lo = b * block
            nb = <int>min(block, N - lo)
            _network_forward(0, 1, net, params, X + lo * I0, 0, nb, block, pre + t * per_thread, post + t * per_thread,
                             NULL, NULL, 0, 0, False)
            _predict_output(net, output, pre + t * per_thread, block, nb, out + lo * OL)
        return
    for b in range(nblocks):
        lo = b * block
        nb = <int>min(block, N - lo)
        if num_threads > 1:
            with parallel(num_threads=num_threads):
                _network_forward(threadid(), omp_get_num_threads(), net, params, X + lo * I0, 0, nb, block, pre, post,
                                 NULL, NULL, 0, 0, False)
        else:
            _network_forward(0, 1, net, params, X + lo * I0, 0, nb, block, pre, post, NULL, NULL, 0, 0, False)
        _predict_output(net, output, pre, block, nb, out + lo * OL)


cdef int _check_net(Net* net, const int[::1] sizes, const Py_ssize_t[::1] offsets, const Py_ssize_t[::1] starts,
                    Py_ssize_t P, int activation, double activation_param, int loss, double delta,
                    const double[::1] dropout_rates) except -1:
    """Fill net from the arrays, once they agree with each other and with P"""
    cdef Py_ssize_t L = sizes.shape[0] - 1, l, at = 0, width = 0
    if L < 1 or offsets.shape[0] < L or starts.shape[0] < L or dropout_rates.shape[0] < L - 1:
        raise ValueError(f"train: {L} layers need {L} offsets and starts and {L - 1} dropout rates")
    for l in range(L):
        if sizes[l] < 1 or sizes[l + 1] < 1 or offsets[l] != at or starts[l] != width:
            raise ValueError(f"train: layer {l}'s sizes/offsets/starts disagree")
        at += <Py_ssize_t>sizes[l] * sizes[l + 1] + sizes[l + 1]
        width += sizes[l + 1]
        if l < L - 1 and not 0 <= dropout_rates[l] < 1:
            raise ValueError(f"train: dropout rate {dropout_rates[l]} is not in [0, 1)")
    if at != P:
        raise ValueError(f"train: the layer sizes need {at} parameters, the buffer has {P}")
    if activation < activations.IDENTITY or activation > activations.SILU:
        raise ValueError(f"train: unknown activation code {activation}")
    if loss < losses.CROSS_ENTROPY or loss > losses.HUBER:
        raise ValueError(f"train: unknown loss code {loss}")
    net.L, net.sizes, net.offsets, net.starts, net.P = <int>L, &sizes[0], &offsets[0], &starts[0], P
    net.activation, net.activation_param, net.loss, net.delta = activation, activation_param, loss, delta
    net.dropout = &dropout_rates[0] if dropout_rates.shape[0] > 0 else NULL
    return 0


cdef int _at_least(str name, Py_ssize_t have, Py_ssize_t need) except -1:
    if have < need:
        raise ValueError(f"train: {name} holds {have} elements, needs {need}")
    return 0


cdef floating* _optional(floating[::1] like, arr, str name, bint needed) except? NULL:
    """The pointer of an optional state buffer (NULL when unused), once its length is checked"""
    cdef floating[::1] view
    if not needed:
        return NULL
    if arr is None:
        raise ValueError(f"train: the optimizer's options need the state buffer {name}")
    view = arr
    _at_least(name, view.shape[0], like.shape[0])
    return &view[0]


def train_batches(floating[::1] params not None, floating[::1] grads not None, state0, state1, state2,
                  const floating[:, ::1] X not None, classes, targets, weights, const int64_t[::1] order not None,
                  floating[:, ::1] xb not None, int64_t[::1] cb not None, floating[:, ::1] tb not None,
                  floating[::1] wb not None, floating[::1] pre not None, floating[::1] post not None,
                  floating[::1] dpre not None, floating[::1] dpost not None, floating[::1] mask not None,
                  floating[::1] dropped not None, floating[::1] saved not None, double[::1] partial not None,
                  double[::1] metric not None, floating[::1] shard_grads not None, double[::1] shard_metric not None,
                  const int[::1] sizes not None, const Py_ssize_t[::1] offsets not None,
                  const Py_ssize_t[::1] starts not None, int activation, double activation_param, int loss,
                  double delta, const double[::1] dropout_rates not None, dict hyper not None,
                  Py_ssize_t first, Py_ssize_t last, uint64_t seed, uint64_t stream, int64_t step,
                  double clip_norm, int num_threads):
    """Train on batches [first, last) of an epoch whose sample order is `order` (see the module docstring).
    Returns (status, loss_sum, weight_sum, step, stream, bad_batch): the loss summed over the batches weighted
    by their weight sums, the optimizer's step count and the dropout stream after the last batch applied;
    `metric` accumulates the running training metric's sums. `saved` holds P elements for params and for each
    optimizer state the options use (the call's checkpoint); shard_grads (step_shards - 1) P, shard_metric
    step_shards * 3 O_L."""
    cdef Net net
    cdef Hyper h
    cdef Py_ssize_t n = X.shape[0], B = xb.shape[0], P = params.shape[0], r, n_batches, workspace
    cdef const floating[:, ::1] targets_view   # only read: read-only targets (a memmap) are fine
    cdef const floating[::1] weights_view
    cdef const int64_t[::1] classes_view
    cdef const int64_t* c = NULL
    cdef const floating* t = NULL
    cdef const floating* w = NULL
    cdef floating* s0
    cdef floating* s1
    cdef floating* s2
    cdef double loss_sum = 0, weight_sum = 0
    cdef Py_ssize_t bad_batch = -1
    cdef int status, OL, shards
    _check_net(&net, sizes, offsets, starts, P, activation, activation_param, loss, delta, dropout_rates)
    OL = sizes[net.L]
    n_batches = (n + B - 1) // B if B > 0 else 0
    if B < 1 or n < 1 or not 0 <= first <= last <= n_batches or order.shape[0] != n:
        raise ValueError(f"train: batches [{first}, {last}) of {n_batches} (n={n}, batch {B}, order {order.shape[0]})")
    if X.shape[1] != sizes[0] or xb.shape[1] != sizes[0] or tb.shape[0] != B or tb.shape[1] != OL:
        raise ValueError("train: X, the batch buffers and the layer sizes disagree")
    workspace = B * (starts[net.L - 1] + OL)
    _at_least("grads", grads.shape[0], P)
    for name, have in (("pre", pre.shape[0]), ("post", post.shape[0]), ("dpre", dpre.shape[0]),
                       ("dpost", dpost.shape[0])):
        _at_least(name, have, workspace)
    _at_least("mask", mask.shape[0], B * starts[net.L - 1])
    _at_least("dropped", dropped.shape[0], B * starts[net.L - 1])
    _at_least("partial", partial.shape[0], optim.norm_blocks(P))
    _at_least("metric", metric.shape[0], 3 * OL)
    _at_least("wb", wb.shape[0], B)
    shards = _step_shards(&sizes[0], net.L, B)
    _at_least("shard_grads", shard_grads.shape[0], (shards - 1) * P)
    _at_least("shard_metric", shard_metric.shape[0], shards * 3 * OL)
    _at_least("cb", cb.shape[0], B)
    for r in range(first * B, min(last * B, n)):
        if not 0 <= order[r] < n:
            raise ValueError(f"train: order[{r}] = {order[r]} is not a sample index in [0, {n})")
    if loss == losses.CROSS_ENTROPY:
        classes_view = classes
        if classes_view.shape[0] != n:
            raise ValueError(f"train: {classes_view.shape[0]} class labels for {n} samples")
        for r in range(first * B, min(last * B, n)):
            if not 0 <= classes_view[order[r]] < OL:
                raise ValueError(f"train: class index {classes_view[order[r]]} is not in [0, {OL})")
        c = &classes_view[0]
    else:
        targets_view = targets
        if targets_view.shape[0] != n or targets_view.shape[1] != OL:
            raise ValueError(f"train: targets are ({targets_view.shape[0]}, {targets_view.shape[1]}), "
                             f"need ({n}, {OL})")
        t = &targets_view[0, 0]
    if weights is not None:
        weights_view = weights
        _at_least("weights", weights_view.shape[0], n)
        w = &weights_view[0]
    h.kind = hyper["kind"]
    h.lr, h.momentum, h.dampening = hyper["lr"], hyper.get("momentum", 0.0), hyper.get("dampening", 0.0)
    h.weight_decay, h.beta1, h.beta2 = hyper.get("weight_decay", 0.0), hyper.get("beta1", 0.0), hyper.get("beta2", 0.0)
    h.eps, h.alpha, h.lr_decay = hyper.get("eps", 0.0), hyper.get("alpha", 0.0), hyper.get("lr_decay", 0.0)
    h.nesterov, h.maximize, h.amsgrad = hyper.get("nesterov", False), hyper.get("maximize", False), hyper.get("amsgrad", False)
    h.decoupled, h.centered = hyper.get("decoupled", False), hyper.get("centered", False)
    if h.kind < SGD or h.kind > ADAGRAD:
        raise ValueError(f"train: unknown optimizer code {h.kind}")
    s0 = _optional(params, state0, "state0", h.kind != SGD or h.momentum != 0)
    s1 = _optional(params, state1, "state1", h.kind == ADAM or (h.kind == RMSPROP and h.centered))
    s2 = _optional(params, state2, "state2", (h.kind == ADAM and h.amsgrad) or (h.kind == RMSPROP and h.momentum > 0))
    if step < 0:
        raise ValueError(f"train: step must be >= 0, got {step}")
    _at_least("saved", saved.shape[0], P * (1 + (s0 != NULL) + (s1 != NULL) + (s2 != NULL)))
    with nogil:
        status = _train_batches(&net, &h, &params[0], &grads[0], s0, s1, s2, &X[0, 0], c, t, w, &order[0], n,
                                &xb[0, 0], &cb[0], &tb[0, 0], &wb[0], &pre[0], &post[0], &dpre[0], &dpost[0],
                                &mask[0] if mask.shape[0] else NULL, &dropped[0] if dropped.shape[0] else NULL,
                                &partial[0], &saved[0], &metric[0],
                                &shard_grads[0] if shard_grads.shape[0] else NULL, &shard_metric[0], B, first, last,
                                seed, &stream, &step, clip_norm,
                                &loss_sum, &weight_sum, &bad_batch, num_threads)
    return status, loss_sum, weight_sum, step, stream, bad_batch


def predict_rows(floating[:, ::1] out not None, const floating[:, ::1] X not None, const floating[::1] params not None,
                 const int[::1] sizes not None, const Py_ssize_t[::1] offsets not None,
                 const Py_ssize_t[::1] starts not None, int activation, double activation_param, int output,
                 floating[::1] pre not None, floating[::1] post not None, Py_ssize_t block, int num_threads):
    """out = the network's output activation (softmax / sigmoid / identity) on every row of X; pre and post
    are workspaces of at least num_threads * block * (sum of the widths) elements"""
    cdef Net net
    cdef double no_dropout = 0
    cdef Py_ssize_t N = X.shape[0], per_thread
    cdef const double[::1] rates = np.zeros(max(1, sizes.shape[0] - 2))
    _check_net(&net, sizes, offsets, starts, params.shape[0], activation, activation_param, losses.CROSS_ENTROPY,
               0, rates)
    if X.shape[1] != sizes[0] or out.shape[0] != N or out.shape[1] != sizes[net.L] or N < 1 or block < 1:
        raise ValueError("predict_rows: X, out and the layer sizes disagree")
    if output < SOFTMAX or output > IDENTITY_OUTPUT or num_threads < 1:
        raise ValueError(f"predict_rows: unknown output code {output} or thread count {num_threads}")
    per_thread = block * (starts[net.L - 1] + sizes[net.L])
    _at_least("pre", pre.shape[0], num_threads * per_thread)
    _at_least("post", post.shape[0], num_threads * per_thread)
    with nogil:
        _predict_rows(&net, output, &params[0], &X[0, 0], N, block, &pre[0], &post[0], &out[0, 0], per_thread,
                      num_threads)
