"""The model file: a .npz (zip) of two arrays, read without pickle and checked before anything is allocated.

Format version 1, written by `save`:
    params.npy    1-D float32 or float64: the model's flat parameter buffer (the layout of mlp.py)
    metadata.npy  0-d unicode array holding JSON: {"format": "fastnn.MLP", "format_version": 1,
                  "layer_sizes", "activation", "loss", "dtype", "init", "negative_slope", "huber_delta",
                  "dropout" (a rate per hidden layer), "classes" (a list or null), "classes_dtype" (a NumPy
                  dtype string or null), "y_1d"}

A model file may come from anyone, so `load` trusts nothing in it. From the zip directory and the .npy headers
alone, before reading any array data, it refuses: members other than these two; compression other than none
or deflate, and members that would expand more than MAX_EXPANSION-fold (zip bombs); metadata over
MAX_METADATA_BYTES; any dtype but float params and unicode metadata (so an object array is never unpickled:
allow_pickle is never on); and a params array whose length is not what the metadata's layer sizes need, so
a file that claims a terabyte model is refused by its header, not by running out of memory. Then it checks
every metadata field, that the parameters are finite and the class labels sorted and unique; a newer format
version is refused with a message that says so. Every refusal is a ValueError naming the file and the problem.
"""
import json
import os
import re
import zipfile
import zlib

import numpy as np

FORMAT = "fastnn.MLP"
FORMAT_VERSION = 1
MAX_METADATA_BYTES = 1 << 20
MAX_CLASS_BYTES = 64 << 20
MAX_EXPANSION = 50              # deflated float parameters shrink by ~10%; a member growing 50-fold is a bomb
MAX_LAYER_SIZE = 2**31 - 1      # the kernels' int sizes
# field -> the JSON types it may have (type(value) must be one of them: True is not an int here)
FIELDS = {"format": (str,), "format_version": (int,), "layer_sizes": (list,), "activation": (str,),
          "loss": (str,), "dtype": (str,), "init": (str,), "negative_slope": (int, float),
          "huber_delta": (int, float), "dropout": (list,), "classes": (list, type(None)),
          "classes_dtype": (str, type(None)), "y_1d": (bool,)}
LABEL_DTYPE = re.compile(r"[<>|=]?([biuf]\d{1,2}|U\d{1,9})")
LABEL_TYPES = {"b": (bool,), "i": (int,), "u": (int,), "f": (int, float), "U": (str,)}


def save(model, path):
    """Write `model` to `path` atomically: a crash mid-write leaves any previous file whole."""
    if not np.all(np.isfinite(model.params)):
        raise ValueError("the model's parameters contain NaN or inf; refusing to write a file no one can load")
    classes = model.classes_
    if classes is not None and classes.dtype == object:  # e.g. strings from a pandas column
        classes = np.asarray(classes.tolist())
        if classes.dtype.kind not in "biufU":
            raise ValueError(f"class labels of type {classes.dtype} cannot be saved: use numbers or strings")
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "layer_sizes": model.layer_sizes,
            "activation": model.activation, "loss": model.loss, "dtype": model.dtype.name, "init": model.init,
            "negative_slope": model.negative_slope, "huber_delta": model.huber_delta, "dropout": model.dropout,
            "classes": None if classes is None else classes.tolist(),
            "classes_dtype": None if classes is None else classes.dtype.str, "y_1d": model._y_1d}
    text = json.dumps(meta, allow_nan=False)
    tmp = f"{os.fspath(path)}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            np.savez(f, params=model.params, metadata=np.array(text))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load(source, cls, backend):
    """The model of class `cls` stored in `source` (a path or a binary file object), on `backend`;
    a ValueError for any damaged or crafted file."""
    if hasattr(source, "read"):
        return _load(source, getattr(source, "name", "the model file"), cls, backend)
    with open(source, "rb") as f:  # a missing or unreadable path raises its own OSError
        return _load(f, source, cls, backend)


def _load(f, name, cls, backend):
    try:
        with zipfile.ZipFile(f) as zf:
            return _read(zf, cls, backend)
    except (ValueError, zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, OSError, EOFError,
            NotImplementedError, RuntimeError, OverflowError, RecursionError) as e:
        raise ValueError(f"{name} is not a readable fastnn model file: {str(e) or 'unexpected end of data'}") \
            from None


def _read(zf, cls, backend):
    members = _members(zf)
    meta = _metadata(zf, members["metadata.npy"])
    sizes = meta["layer_sizes"]
    n_params = sum(i * o + o for i, o in zip(sizes[:-1], sizes[1:]))
    with zf.open(members["params.npy"]) as f:
        dtype, shape, nbytes = _npy_header(f, members["params.npy"])
        if dtype.kind != "f" or dtype.itemsize not in (4, 8) or shape != (n_params,):
            raise ValueError(f"the parameter array is {dtype} of shape {shape}, but layer sizes {_brief(sizes)} "
                             f"need {n_params} {meta['dtype']} values")
        if dtype.newbyteorder("=") != np.dtype(meta["dtype"]):
            raise ValueError(f"params is {dtype} but the metadata says {meta['dtype']}")
        try:  # checks every option; allocates, but no more than the file holds
            model = cls(sizes, activation=meta["activation"], loss=meta["loss"], dtype=meta["dtype"],
                        init=meta["init"], backend=backend, negative_slope=meta["negative_slope"],
                        huber_delta=meta["huber_delta"], dropout=meta["dropout"], seed=0)
        except (TypeError, ValueError) as e:
            raise ValueError(f"invalid model metadata: {e}") from None
        params = np.frombuffer(_read_exactly(f, nbytes, "params"), dtype)
    if not np.all(np.isfinite(params)):
        raise ValueError("the parameters contain NaN or inf")
    model.params[...] = params
    model.classes_ = _classes(meta, model)
    model._y_1d = meta["y_1d"]
    return model


def _members(zf):
    """{name: ZipInfo} of exactly metadata.npy and params.npy, after the zip-bomb checks."""
    infos = zf.infolist()
    names = sorted(i.filename for i in infos)
    if names != ["metadata.npy", "params.npy"]:
        raise ValueError(f"expected exactly the arrays 'metadata' and 'params', found {names[:10]}")
    for info in infos:
        if info.flag_bits & 0x1:
            raise ValueError(f"{info.filename} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ValueError(f"{info.filename} uses zip compression method {info.compress_type}; only none and "
                             f"deflate are read")
        if info.file_size > MAX_EXPANSION * info.compress_size + 4096:
            raise ValueError(f"{info.filename} would expand from {info.compress_size} to {info.file_size} bytes "
                             f"(a zip bomb?)")
    if zf.getinfo("metadata.npy").file_size > MAX_METADATA_BYTES:
        raise ValueError(f"the metadata is over {MAX_METADATA_BYTES} bytes")
    return {i.filename: i for i in infos}


def _npy_header(f, info):
    """(dtype, shape, data bytes) of the .npy member open in f, checked against the member's size."""
    version = np.lib.format.read_magic(f)
    if version not in ((1, 0), (2, 0)):
        raise ValueError(f"{info.filename}: unsupported .npy format version {version}")
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _, dtype = read_header(f)   # parsed with ast.literal_eval: no code runs
    if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
        raise ValueError(f"{info.filename} holds {dtype} values: refused (it could only be read by unpickling)")
    nbytes = dtype.itemsize * int(np.prod(shape, dtype=object))
    if f.tell() + nbytes != info.file_size:
        raise ValueError(f"{info.filename}: its header promises {nbytes} bytes of {dtype} {shape} but the member "
                         f"holds {info.file_size - f.tell()}")
    return dtype, tuple(shape), nbytes


def _read_exactly(f, nbytes, what):
    data = f.read(nbytes)   # at most the member's size, checked above; the CRC is checked at its end
    if len(data) != nbytes:
        raise ValueError(f"{what} is truncated: {len(data)} of {nbytes} bytes")
    return data


def _refuse_constant(name):
    raise ValueError(f"the metadata holds {name}")


def _metadata(zf, info):
    """The metadata dict, every field present and of its JSON type, and a version this fastnn reads."""
    with zf.open(info) as f:
        dtype, shape, nbytes = _npy_header(f, info)
        if dtype.kind != "U" or shape != ():
            raise ValueError(f"metadata is a {dtype} array of shape {shape}, expected a unicode string")
        text = str(np.frombuffer(_read_exactly(f, nbytes, "metadata"), dtype)[0])
    meta = json.loads(text, parse_constant=_refuse_constant)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"its metadata does not say \"format\": \"{FORMAT}\"")
    version = meta.get("format_version")
    if type(version) is not int or version < 1:
        raise ValueError(f"invalid format_version {version!r}")
    if version > FORMAT_VERSION:
        raise ValueError(f"it has model format version {version}, newer than this fastnn reads (up to "
                         f"{FORMAT_VERSION}): upgrade fastnn to load it")
    if set(meta) != set(FIELDS):
        raise ValueError(f"metadata fields missing: {sorted(set(FIELDS) - set(meta))}, "
                         f"unexpected: {sorted(set(meta) - set(FIELDS))[:10]}")
    for key, types in FIELDS.items():
        if type(meta[key]) not in types:
            raise ValueError(f"metadata field {key!r} is {_brief(meta[key])}, expected {'/'.join(t.__name__ for t in types)}")
    sizes = meta["layer_sizes"]
    if len(sizes) < 2 or not all(type(s) is int and 1 <= s <= MAX_LAYER_SIZE for s in sizes):
        raise ValueError(f"layer_sizes must be at least two integers in [1, {MAX_LAYER_SIZE}], got {_brief(sizes)}")
    if meta["dtype"] not in ("float32", "float64"):
        raise ValueError(f"dtype must be float32 or float64, got {meta['dtype']!r}")
    return meta


def _classes(meta, model):
    """classes_ from the metadata: None for regression, else n_outputs sorted unique labels of a plain dtype."""
    labels, dtype_text, n_out = meta["classes"], meta["classes_dtype"], model.layer_sizes[-1]
    if not model.is_classifier or labels is None:
        if labels is not None or dtype_text is not None or (meta["y_1d"] and n_out != 1):
            raise ValueError(f"classes / y_1d do not fit a {model.loss} model with {n_out} outputs")
        return None
    try:
        dtype = np.dtype(dtype_text) if LABEL_DTYPE.fullmatch(dtype_text or "") else None
    except TypeError:  # e.g. "i3", "U999999999"
        dtype = None
    if dtype is None:
        raise ValueError(f"class labels of dtype {dtype_text!r} are not allowed (numbers or strings only)")
    if len(labels) != n_out or dtype.itemsize * n_out > MAX_CLASS_BYTES:
        raise ValueError(f"{len(labels)} class labels of dtype {dtype} for {n_out} outputs")
    if not all(type(c) in LABEL_TYPES[dtype.kind] for c in labels):
        raise ValueError(f"class labels {_brief(labels)} are not all of dtype {dtype}")
    if meta["y_1d"] and (model.loss == "cross_entropy" or n_out != 1):
        raise ValueError(f"y_1d does not fit a {model.loss} model with {n_out} outputs")
    classes = np.array(labels, dtype=dtype)
    if classes.tolist() != labels or not np.all(classes[1:] > classes[:-1]):
        raise ValueError(f"class labels {_brief(labels)} are not sorted, unique and representable as {dtype}")
    return classes


def _brief(value):
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
