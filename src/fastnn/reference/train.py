"""Whole-epoch training and whole-network inference in pure NumPy: the twin of csrc/_train.pyx.

Same arguments, same buffers, same order of work per batch (gather, forward, dropout, loss, running metric,
backward, gradient-norm check and clipping, optimizer step, undone if it overflowed), built from the reference
kernels, so that the NumPy backend trains by the very same algorithm. See csrc/train.pxd for the buffer layout.
"""
import numpy as np

from . import activations, dense, dropout, losses, optim

__all__ = ["step_shards", "train_batches", "predict_rows"]

ACTIVATIONS = ("identity", "relu", "leaky_relu", "sigmoid", "tanh", "gelu", "softplus", "silu")  # ActivationKind
LOSSES = ("cross_entropy", "binary_cross_entropy", "mse", "mae", "huber")                        # Loss codes
OPTIMIZERS = ("sgd", "adam", "rmsprop", "adagrad")                                              # OptimizerKind
OUTPUTS = ("softmax", "sigmoid", "identity")                                                    # OutputKind
TRAIN_OK, NONFINITE_LOSS, NONFINITE_GRADIENT, NONFINITE_STEP = 0, 1, 2, 3


def _activation(kind, param):
    name = ACTIVATIONS[kind]
    forward, backward = getattr(activations, f"{name}_forward"), getattr(activations, f"{name}_backward")
    if name == "leaky_relu":
        return (lambda out, x: forward(out, x, param)), (lambda dx, dout, x, out: backward(dx, dout, x, out, param))
    return forward, backward


def _block(flat, B, start, nb, width):
    return flat[B * start: B * start + nb * width].reshape(nb, width)


def _layers(params, sizes, offsets):
    for l in range(len(sizes) - 1):
        I, O = int(sizes[l]), int(sizes[l + 1])
        W = params[offsets[l]: offsets[l] + I * O].reshape(I, O)
        yield l, I, O, W, params[offsets[l] + I * O: offsets[l] + I * O + O]


def _forward(params, x, sizes, offsets, starts, B, pre, post, mask, dropped, act_forward, rates, seed, stream):
    """Hidden layers: pre = a W + b, post = f(pre), dropout when rates say; the last layer: logits only."""
    a, nb, L = x, x.shape[0], len(sizes) - 1
    for l, I, O, W, b in _layers(params, sizes, offsets):
        z = _block(pre, B, starts[l], nb, O)
        dense.dense_forward(z, a, W, b)
        if l == L - 1:
            return stream
        a = _block(post, B, starts[l], nb, O)
        act_forward(a, z)
        if rates is not None and rates[l] > 0:
            kept = _block(dropped, B, starts[l], nb, O)
            dropout.dropout_forward(kept, _block(mask, B, starts[l], nb, O), a, rates[l], seed, stream)
            stream += 1
            a = kept
    return stream


def _backward(params, grads, x, rows, sizes, offsets, starts, B, nb, pre, post, dpre, dpost, mask, dropped,
              act_backward, rates):
    """grads = the gradient of rows [r0, r1) of the batch, from the loss gradient in dpre's last block"""
    r0, r1 = rows
    L = len(sizes) - 1
    grads[...] = 0
    for l, I, O, W, b in reversed(list(_layers(params, sizes, offsets))):
        dW = grads[offsets[l]: offsets[l] + I * O].reshape(I, O)
        db = grads[offsets[l] + I * O: offsets[l] + I * O + O]
        dz = _block(dpre, B, starts[l], nb, O)[r0:r1]
        if l < L - 1:
            act_backward(dz, _block(dpost, B, starts[l], nb, O)[r0:r1], _block(pre, B, starts[l], nb, O)[r0:r1],
                         _block(post, B, starts[l], nb, O)[r0:r1])
        if l > 0:
            dropped_input = rates[l - 1] > 0
            a = _block(dropped if dropped_input else post, B, starts[l - 1], nb, I)[r0:r1]
            da = _block(dpost, B, starts[l - 1], nb, I)[r0:r1]
        else:
            a, da, dropped_input = x[r0:r1], None, False
        dense.dense_backward(da, dW, db, dz, a, W)
        if dropped_input:
            da *= _block(mask, B, starts[l - 1], nb, I)[r0:r1]


def _accumulate_metric(loss_kind, out, classes, targets, weights, metric):
    """The running training metric: weighted correct predictions (classification; exact rows for multi-label),
    or per output sum w (y - yhat)^2, sum w y, sum w y^2 (regression, for R^2)."""
    w = np.ones(len(out)) if weights is None else weights.astype(np.float64)
    if loss_kind == 0:
        metric[0] += float(np.sum(w * (out.argmax(axis=1) == classes)))
    elif loss_kind == 1:
        metric[0] += float(np.sum(w * np.all((out >= 0.5) == (targets >= 0.5), axis=1)))
    else:
        y, r = targets.astype(np.float64), targets.astype(np.float64) - out
        O = out.shape[1]
        metric[0:3 * O:3] += (w[:, None] * r * r).sum(axis=0)
        metric[1:3 * O:3] += (w[:, None] * y).sum(axis=0)
        metric[2:3 * O:3] += (w[:, None] * y * y).sum(axis=0)


# the compiled loop's row shards (csrc/_train.pyx): a step of SHARD_MIN_WORK to PARALLEL_STEP_MIN_WORK multiply-adds
# of a batch of at least SHARD_MIN_BATCH rows sums its gradient shard by shard, even shards of at least MR rows.
# This twin sums in the same shards: with a sign-valued gradient (MAE) the terms can cancel exactly, and Adam
# turns a last-bit difference of a zero sum into a visible one.
PARALLEL_STEP_MIN_WORK, SHARD_MIN_WORK, SHARDS, SHARD_MIN_BATCH, MR = 1 << 22, 1 << 18, 2, 16, 6


def step_shards(sizes, batch_size):
    """The row shards the training step of these layer sizes and batch size is cut into"""
    work = 3 * batch_size * sum(int(sizes[l]) * int(sizes[l + 1]) for l in range(len(sizes) - 1))
    return SHARDS if SHARD_MIN_WORK <= work < PARALLEL_STEP_MIN_WORK and batch_size >= SHARD_MIN_BATCH else 1


def _shard_rows(nb, shards):
    """[(r0, r1)] of each row shard of a batch of nb rows"""
    ns = max(1, min(shards, nb // MR))
    cuts = [s * nb // ns for s in range(ns)] + [nb]
    return list(zip(cuts[:-1], cuts[1:]))


# every overflow is caught (a non-finite loss, gradient or step) and reported as the compiled loop reports it:
# NumPy's own warnings would only precede that report, or replace it under python -W error
@np.errstate(all="ignore")
def train_batches(params, grads, state0, state1, state2, X, classes, targets, weights, order, xb, cb, tb, wb, pre,
                  post, dpre, dpost, mask, dropped, saved, partial, metric, shard_grads, shard_metric, sizes, offsets,
                  starts, activation, activation_param, loss, delta, dropout_rates, hyper, first, last, seed, stream,
                  step, clip_norm, num_threads):
    """Train on batches [first, last) of an epoch whose sample order is `order` (see csrc/_train.pyx).
    Returns (status, loss_sum, weight_sum, step, stream, bad_batch)."""
    n, B, L = X.shape[0], xb.shape[0], len(sizes) - 1
    act_forward, act_backward = _activation(activation, activation_param)
    name = LOSSES[loss]
    loss_forward, loss_backward = getattr(losses, f"{name}_forward"), getattr(losses, f"{name}_backward")
    extra = {"delta": delta} if name == "huber" else {}
    kind = OPTIMIZERS[hyper["kind"]]
    loss_sum = weight_sum = 0.0
    OL = int(sizes[L])
    for batch in range(first, last):
        idx = order[batch * B: (batch + 1) * B]
        nb = len(idx)
        x = xb[:nb]
        x[...] = X[idx]
        c = cb[:nb] if name == "cross_entropy" else None
        t = tb[:nb] if name != "cross_entropy" else None
        if c is not None:
            c[...] = classes[idx]
        else:
            t[...] = targets[idx]
        w = None
        if weights is not None:
            w = wb[:nb]
            w[...] = weights[idx]
        stream = _forward(params, x, sizes, offsets, starts, B, pre, post, mask, dropped, act_forward,
                          dropout_rates, seed, stream)
        z, out = _block(pre, B, starts[L - 1], nb, OL), _block(post, B, starts[L - 1], nb, OL)
        value = loss_forward(out, z, c if c is not None else t, **extra, sample_weight=w)
        if not np.isfinite(value):
            return NONFINITE_LOSS, loss_sum, weight_sum, step, stream, batch
        _accumulate_metric(loss, out, c, t, w, metric)
        wsum = float(nb if w is None else w.astype(np.float64).sum())
        dpre[...] = 0
        dpost[...] = 0
        loss_backward(_block(dpre, B, starts[L - 1], nb, OL), out, c if c is not None else t, **extra,
                      sample_weight=w)
        shards = _shard_rows(nb, step_shards(sizes, B))
        for k, rows in enumerate(shards):
            _backward(params, grads if k == 0 else shard_grads[:len(grads)], x, rows, sizes, offsets, starts, B, nb,
                      pre, post, dpre, dpost, mask, dropped, act_backward, dropout_rates)
        if len(shards) > 1:
            grads += shard_grads[:len(grads)]
        normsq = float(np.sum(np.square(grads, dtype=np.float64)))
        if not np.isfinite(normsq):
            return NONFINITE_GRADIENT, loss_sum, weight_sum, step, stream, batch
        if clip_norm > 0:
            coef = clip_norm / (np.sqrt(normsq) + 1e-6)
            if coef < 1:
                grads *= grads.dtype.type(coef)
        # a finite gradient can still overflow the step (a huge lr): keep what it overwrites, to undo it
        live = [a for a in (params, state0, state1, state2) if a is not None]
        kept = [saved[k * len(params): (k + 1) * len(params)] for k in range(len(live))]
        for keep, a in zip(kept, live):
            keep[...] = a
        step += 1
        _optimizer_step(kind, hyper, params, grads, (state0, state1, state2), step)
        if not all(np.isfinite(a).all() for a in live):
            for keep, a in zip(kept, live):
                a[...] = keep
            return NONFINITE_STEP, loss_sum, weight_sum, step - 1, stream, batch
        loss_sum += value * wsum
        weight_sum += wsum
    return TRAIN_OK, loss_sum, weight_sum, step, stream, -1


def _optimizer_step(kind, h, params, grads, state, step):
    g = h.get
    if kind == "sgd":
        optim.sgd_step(params, state[0], grads, h["lr"], g("momentum", 0.0), g("dampening", 0.0),
                       g("weight_decay", 0.0), g("nesterov", False), g("maximize", False), step == 1)
    elif kind == "adam":
        optim.adam_step(params, state[0], state[1], state[2], grads, step, h["lr"], h["beta1"], h["beta2"], h["eps"],
                        g("weight_decay", 0.0), g("amsgrad", False), g("maximize", False), g("decoupled", False))
    elif kind == "rmsprop":
        optim.rmsprop_step(params, state[0], state[1], state[2], grads, h["lr"], h["alpha"], h["eps"],
                           g("weight_decay", 0.0), g("momentum", 0.0), g("centered", False), g("maximize", False))
    else:
        optim.adagrad_step(params, state[0], grads, step, h["lr"], g("lr_decay", 0.0), g("weight_decay", 0.0),
                           h["eps"], g("maximize", False))


@np.errstate(all="ignore")     # an overflow shows in `out`, which the caller checks, as the compiled loop's
def predict_rows(out, X, params, sizes, offsets, starts, activation, activation_param, output, pre, post, block,
                 num_threads):
    """out = the network's output activation (softmax / sigmoid / identity) on every row of X"""
    act_forward, _ = _activation(activation, activation_param)
    L = len(sizes) - 1
    for lo in range(0, X.shape[0], block):
        x = X[lo: lo + block]
        _forward(params, x, sizes, offsets, starts, block, pre, post, None, None, act_forward, None, 0, 0)
        z = _block(pre, block, starts[L - 1], len(x), int(sizes[L]))
        rows = out[lo: lo + len(x)]
        if OUTPUTS[output] == "softmax":
            losses.softmax_forward(rows, z)
        elif OUTPUTS[output] == "sigmoid":
            activations.sigmoid_forward(rows, z)
        else:
            rows[...] = z
