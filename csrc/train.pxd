# The training step and the inference pass of a whole MLP, in C: the loops that call the layer kernels.
# Legend: n samples in the epoch, B batch size (nb rows in the current batch), L dense layers,
# sizes[0..L] the layer widths (I = sizes[l], O = sizes[l+1] for layer l), P parameters.
# Layout: params (and grads, and each optimizer state) is one flat buffer, layer by layer W_l (I, O) then b_l (O,),
# W_l starting at offsets[l]. Activation workspaces are flat too: layer l's (nb, O) block of pre / post / dpre /
# dpost starts at B * starts[l], starts[l] = sizes[1] + ... + sizes[l]; the hidden layers' dropout masks and
# dropped activations likewise (they stop before the last layer). Everything is allocated by the caller once, before the first batch.
from cython cimport floating
from libc.stdint cimport int64_t, uint64_t


cdef enum OptimizerKind:
    SGD = 0
    ADAM = 1
    RMSPROP = 2
    ADAGRAD = 3

cdef enum OutputKind:           # the output activation predict applies to the last layer
    SOFTMAX = 0
    SIGMOID = 1
    IDENTITY_OUTPUT = 2

cdef enum TrainStatus:
    TRAIN_OK = 0
    NONFINITE_LOSS = 1          # the batch's loss was NaN/inf: nothing was updated
    NONFINITE_GRADIENT = 2      # the batch's gradient was NaN/inf: nothing was updated
    NONFINITE_STEP = 3          # the optimizer step made the params or its state NaN/inf: it was undone


ctypedef struct Hyper:          # the optimizer, as torch.optim names its hyper-parameters
    int kind
    double lr, momentum, dampening, weight_decay, beta1, beta2, eps, alpha, lr_decay
    bint nesterov, maximize, amsgrad, decoupled, centered


ctypedef struct Net:            # the model's shape and its non-array settings
    int L
    const int* sizes            # (L + 1,)
    const Py_ssize_t* offsets   # (L,) start of W_l in the flat buffers
    const Py_ssize_t* starts    # (L,) sizes[1] + ... + sizes[l]: layer l's block starts at B * starts[l]
    Py_ssize_t P
    int activation              # an ActivationKind
    double activation_param     # leaky_relu's negative_slope
    int loss                    # a Loss code
    double delta                # huber's delta
    const double* dropout       # (L - 1,) rate per hidden layer, 0 = none
