"""Model files (fastnn.io): round trips, and truncated, corrupted and hand-crafted malicious files, each refused
with a ValueError that names the problem, before any large allocation and without ever unpickling."""
import io
import json
import os
import tracemalloc
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import fastnn

FUZZ_EXAMPLES = int(os.environ.get("FASTNN_FUZZ_EXAMPLES", 20))   # a campaign: see tests/test_fuzz.py


def npy(array, allow_pickle=False):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asanyarray(array), allow_pickle=allow_pickle)
    return buf.getvalue()


def write_zip(members, compression=zipfile.ZIP_STORED):
    """An in-memory zip of {name: bytes}, laid out as np.savez does."""
    f = io.BytesIO()
    with zipfile.ZipFile(f, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    f.seek(0)
    return f


def write_model(meta, params, compression=zipfile.ZIP_STORED):
    """An in-memory model file from a metadata dict (or raw JSON text) and a params array."""
    text = meta if isinstance(meta, str) else json.dumps(meta)
    return write_zip({"params.npy": npy(params), "metadata.npy": npy(np.array(text))}, compression)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A fitted string-label classifier, its file's bytes, and that file's metadata and params."""
    rng = np.random.default_rng(0)
    model = fastnn.MLP([3, 4, 2], seed=0)
    model.fit(rng.standard_normal((20, 3)), np.array(["a", "b"] * 10), epochs=1)
    path = tmp_path_factory.mktemp("io") / "model.npz"
    model.save(path)
    with np.load(path) as data:
        meta, params = json.loads(str(data["metadata"])), data["params"]
    return model, path.read_bytes(), meta, params


def same_model(a, b):
    """The same parameters bit for bit, options and class labels."""
    options = ("layer_sizes", "activation", "loss", "dtype", "init", "negative_slope", "huber_delta", "dropout",
               "_y_1d")
    return (a.params.tobytes() == b.params.tobytes() and all(getattr(a, k) == getattr(b, k) for k in options)
            and (a.classes_ is None) == (b.classes_ is None)
            and (a.classes_ is None or a.classes_.tolist() == b.classes_.tolist()))


# ------------------------------------------------------------------------------------------ round trips
@pytest.mark.parametrize("loss, y", [
    ("cross_entropy", np.array(["x", "yy", "zzz"] * 8)),
    ("cross_entropy", np.array(["x", "yy", "zzz"] * 8, dtype=object)),   # a pandas column of strings
    ("cross_entropy", np.array([-1.5, 0.0, 2.0] * 8)),
    ("cross_entropy", np.array([0, 2, 2] * 8)),
    ("binary_cross_entropy", np.array([0, 1, 1] * 8)),
    ("mse", np.linspace(-1, 1, 24)),
    ("huber", np.ones((24, 3))),
])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_is_exact(tmp_path, loss, y, dtype):
    X = np.random.default_rng(1).standard_normal((24, 2))
    n_out = 1 if y.ndim == 1 and loss not in ("cross_entropy",) else 3
    model = fastnn.MLP([2, 5, 4, n_out], loss=loss, dtype=dtype, activation="gelu", seed=3, dropout=[0.25, 0.0])
    model.fit(X, y, epochs=2)
    model.save(tmp_path / "m.npz")
    loaded = fastnn.MLP.load(tmp_path / "m.npz")
    assert same_model(loaded, model)
    assert model.classes_ is None or loaded.classes_.dtype == (model.classes_.dtype if y.dtype != object else "<U3")
    assert np.array_equal(loaded.predict(X), model.predict(X))
    assert loaded.evaluate(X, y) == model.evaluate(X, y)


def test_save_refuses_non_finite_params_and_is_atomic(saved, tmp_path, monkeypatch):
    model, original, _, _ = saved
    target = tmp_path / "m.npz"
    target.write_bytes(original)
    broken = fastnn.MLP([3, 4, 2], seed=0)
    broken.params[0] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        broken.save(target)

    def fail_midway(f, **arrays):
        f.write(b"PK half a file")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", fail_midway)
    with pytest.raises(OSError, match="disk full"):
        model.save(target)
    assert target.read_bytes() == original         # the old file is whole
    assert os.listdir(tmp_path) == ["m.npz"]       # and no temporary file is left


def test_a_missing_file_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        fastnn.MLP.load(tmp_path / "nothing.npz")


# ------------------------------------------------------------------------------------------ damaged files
def refused(data):
    """True when loading the bytes `data` raises the loader's ValueError."""
    with pytest.raises(ValueError, match="not a readable fastnn model file"):
        fastnn.MLP.load(io.BytesIO(data))
    return True


def test_every_truncation_is_refused(saved):
    _, data, _, _ = saved
    assert all(refused(data[:n]) for n in range(len(data)))


@pytest.mark.parametrize("data", [b"", b"not a zip file at all", b"PK\x03\x04" + bytes(100), b"PK\x05\x06" + bytes(18)])
def test_not_a_zip_is_refused(data):
    assert refused(data)


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize="FASTNN_FUZZ_EXAMPLES" not in os.environ)
@given(data=st.data())
def test_corrupted_files_are_refused_or_load_unchanged(saved, data):
    """Overwrite up to 3 bytes anywhere and append junk: load refuses, or (bytes nobody reads) gives the same model."""
    model, original, _, _ = saved
    raw = bytearray(original)
    for _ in range(data.draw(st.integers(1, 3))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    raw += data.draw(st.binary(max_size=8))
    try:
        loaded = fastnn.MLP.load(io.BytesIO(bytes(raw)))
    except ValueError as e:
        assert "not a readable fastnn model file" in str(e)
    else:
        assert same_model(loaded, model)


# ------------------------------------------------------------------------------------------ crafted files
class Payload:
    """Unpickling this runs os.mkdir(marker): the code a malicious pickle would run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


@pytest.mark.parametrize("member", ["params.npy", "metadata.npy"])
def test_a_pickled_object_array_is_refused_and_never_runs(saved, tmp_path, member):
    _, _, meta, params = saved
    marker = tmp_path / "pwned"
    members = {"params.npy": npy(params), "metadata.npy": npy(np.array(json.dumps(meta)))}
    members[member] = npy(np.array([Payload(marker)], dtype=object), allow_pickle=True)
    f = write_zip(members)
    with pytest.raises(ValueError, match="unpickling"):
        fastnn.MLP.load(f)
    assert not marker.exists()
    f.seek(0)
    with np.load(f, allow_pickle=True) as data:   # the file is truly malicious: unpickling it runs the payload
        data[member.removesuffix(".npy")]
    assert marker.exists()


def test_metadata_claiming_more_than_its_arrays_is_refused(saved):
    _, _, meta, params = saved
    f = write_model({**meta, "layer_sizes": [3, 40, 2]}, params)
    with pytest.raises(ValueError, match=r"shape \(26,\), but layer sizes \[3, 40, 2\] need 242"):
        fastnn.MLP.load(f)


def peak_allocation(fn):
    """fn()'s exception and the peak bytes traced (NumPy reports its buffers to tracemalloc) while it ran."""
    tracemalloc.start()
    try:
        with pytest.raises(ValueError) as info:
            fn()
        return info.value, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_terabyte_layer_sizes_are_refused_before_allocating(saved):
    _, _, meta, params = saved
    huge = {**meta, "layer_sizes": [10**6, 10**6, 10**6, 2], "classes": ["a", "b"]}
    f = write_model(huge, params)
    error, peak = peak_allocation(lambda: fastnn.MLP.load(f))
    assert "need 2000004000002 float32 values" in str(error) and peak < 1 << 20
    # params.npy's header agrees with the metadata, but the member does not hold the 8 TB it promises
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                  "shape": (2000004000002,)})
    f = write_zip({"params.npy": header.getvalue() + params.tobytes(),
                                          "metadata.npy": npy(np.array(json.dumps(huge)))})
    error, peak = peak_allocation(lambda: fastnn.MLP.load(f))
    assert "promises 8000016000008 bytes" in str(error) and peak < 1 << 20


def test_a_zip_bomb_is_refused_before_reading():
    """50 MB of zeros deflates to 50 kB: a params member that would expand 1000-fold is refused unread."""
    sizes = [1000, 12489, 2]     # 12.5 M float32 parameters, consistent with the member
    n = sum(i * o + o for i, o in zip(sizes[:-1], sizes[1:]))
    meta = {"format": "fastnn.MLP", "format_version": 1, "layer_sizes": sizes, "activation": "relu",
            "loss": "mse", "dtype": "float32", "init": "auto", "negative_slope": 0.01, "huber_delta": 1.0,
            "dropout": [0.0], "classes": None, "classes_dtype": None, "y_1d": False}
    f = write_model(meta, np.zeros(n, np.float32), zipfile.ZIP_DEFLATED)
    assert len(f.getvalue()) < 1 << 20
    error, peak = peak_allocation(lambda: fastnn.MLP.load(f))
    assert "would expand" in str(error) and "zip bomb" in str(error) and peak < 1 << 20


def test_other_compression_methods_are_refused(saved):
    _, _, meta, params = saved
    f = write_model(meta, params, zipfile.ZIP_BZIP2)   # bzip2 expands unboundedly
    with pytest.raises(ValueError, match="compression method 12"):
        fastnn.MLP.load(f)


def test_deflated_files_load(saved):
    model, _, meta, params = saved
    loaded = fastnn.MLP.load(write_model(meta, params, zipfile.ZIP_DEFLATED))
    assert same_model(loaded, model)


@pytest.mark.parametrize("members, message", [
    (lambda m, p: {"params.npy": p}, "found \\['params.npy'\\]"),
    (lambda m, p: {"params.npy": p, "metadata.npy": m, "extra.npy": p}, "extra.npy"),
    (lambda m, p: {"params.npy": p, "metadata.npy": m, "../../etc/passwd": p}, "passwd"),
    (lambda m, p: {"params.npy": p, "meta.npy": m}, "found \\['meta.npy', 'params.npy'\\]"),
    (lambda m, p: {"params.npy": m, "metadata.npy": m}, "parameter array is <U\\d+ of shape \\(\\), but layer sizes \\[3, 4, 2\\] need 26"),
    (lambda m, p: {"params.npy": p, "metadata.npy": p}, "metadata is a float32 array"),
    (lambda m, p: {"params.npy": p, "metadata.npy": npy(np.array(b"{}"))}, "metadata is a \\|S2 array"),
    (lambda m, p: {"params.npy": p, "metadata.npy": npy(np.array(["{}", "{}"]))}, "of shape \\(2,\\)"),
    (lambda m, p: {"params.npy": p, "metadata.npy": npy(np.zeros(300_000, "U4"))}, "over 1048576 bytes"),
    (lambda m, p: {"params.npy": p[:-7], "metadata.npy": m}, "header promises"),
    (lambda m, p: {"params.npy": p + b"\0" * 4, "metadata.npy": m}, "header promises"),
    (lambda m, p: {"params.npy": b"\x93NUMPY\x03\x00" + p[8:], "metadata.npy": m}, "npy format version"),
    (lambda m, p: {"params.npy": b"\x93NUMPX" + p[6:], "metadata.npy": m}, "magic string"),
])
def test_wrong_members_and_arrays_are_refused(saved, members, message):
    _, _, meta, params = saved
    m, p = npy(np.array(json.dumps(meta))), npy(params)
    with pytest.raises(ValueError, match=message):
        fastnn.MLP.load(write_zip(members(m, p)))


def test_duplicate_members_are_refused(saved):
    _, _, meta, params = saved
    f = io.BytesIO()
    with zipfile.ZipFile(f, "w") as zf, pytest.warns(UserWarning, match="Duplicate name"):
        for name, data in [("params.npy", npy(params)), ("metadata.npy", npy(np.array(json.dumps(meta)))),
                           ("params.npy", npy(params * 0))]:
            zf.writestr(name, data)
    f.seek(0)
    with pytest.raises(ValueError, match="found \\['metadata.npy', 'params.npy', 'params.npy'\\]"):
        fastnn.MLP.load(f)


@pytest.mark.parametrize("params, message", [
    (lambda p: p.astype(np.float64), "is float64 but the metadata says float32"),
    (lambda p: p.astype(np.float16), "float16 of shape"),
    (lambda p: p.astype(np.int32), "int32 of shape"),
    (lambda p: p.astype(np.complex64), "complex64 of shape"),
    (lambda p: p.reshape(2, 13), r"shape \(2, 13\)"),
    (lambda p: np.where(np.arange(p.size) == 5, np.nan, p).astype(p.dtype), "NaN or inf"),
    (lambda p: np.where(np.arange(p.size) == 5, -np.inf, p).astype(p.dtype), "NaN or inf"),
    (lambda p: np.zeros(26, [("a", "<f2"), ("b", "<f2")]), "refused"),
])
def test_wrong_params_are_refused(saved, params, message):
    _, _, meta, p = saved
    with pytest.raises(ValueError, match=message):
        fastnn.MLP.load(write_model(meta, params(p)))


def test_big_endian_params_load(saved):
    model, _, meta, params = saved
    assert same_model(fastnn.MLP.load(write_model(meta, params.astype(">f4"))), model)


@pytest.mark.parametrize("change, message", [
    ({"format_version": 2}, "format version 2, newer than this fastnn reads \\(up to 1\\): upgrade fastnn"),
    ({"format_version": 99, "new_field": 1}, "format version 99, newer"),
    ({"format_version": 0}, "invalid format_version 0"),
    ({"format_version": True}, "invalid format_version True"),
    ({"format_version": "1"}, "invalid format_version '1'"),
    ({"format": "pickle"}, "does not say \"format\": \"fastnn.MLP\""),
    ({"extra": 1}, "unexpected: \\['extra'\\]"),
    ({"y_1d": None}, "field 'y_1d' is None, expected bool"),
    ({"layer_sizes": "3,4,2"}, "field 'layer_sizes' is '3,4,2', expected list"),
    ({"layer_sizes": [3, True, 2]}, "layer_sizes must be"),
    ({"layer_sizes": [3, 0, 2]}, "layer_sizes must be"),
    ({"layer_sizes": [3, -4, 2]}, "layer_sizes must be"),
    ({"layer_sizes": [3, 4.0, 2]}, "layer_sizes must be"),
    ({"layer_sizes": [3, 2**31, 2]}, "layer_sizes must be"),
    ({"layer_sizes": [26]}, "layer_sizes must be"),
    ({"dtype": "object"}, "dtype must be float32 or float64"),
    ({"activation": "__import__('os').system('ls')"}, "invalid model metadata: unknown activation"),
    ({"loss": "hinge"}, "unknown loss"),
    ({"init": 3}, "field 'init' is 3, expected str"),
    ({"negative_slope": True}, "field 'negative_slope' is True"),
    ({"huber_delta": -1}, "huber_delta must be > 0"),
    ({"dropout": 0.5}, "field 'dropout' is 0.5, expected list"),
    ({"dropout": [1.5]}, "dropout must be < 1"),
    ({"dropout": [0.1, 0.1]}, "dropout needs one rate per hidden layer"),
    ({"dropout": [[]]}, "dropout must be a finite real number"),
    ({"classes": ["b", "a"]}, "not sorted, unique"),
    ({"classes": ["a", "a"]}, "not sorted, unique"),
    ({"classes": ["a", "b", "c"]}, "3 class labels of dtype <U1 for 2 outputs"),
    ({"classes": ["a", 1]}, "not all of dtype <U1"),
    ({"classes": ["abc", "b"]}, "not sorted, unique and representable as <U1"),
    ({"classes_dtype": "|O"}, "dtype '\\|O' are not allowed"),
    ({"classes_dtype": "V8"}, "dtype 'V8' are not allowed"),
    ({"classes_dtype": None}, "dtype None are not allowed"),
    ({"classes_dtype": "<U999999999"}, "dtype '<U999999999' are not allowed"),
    ({"classes_dtype": "<i3"}, "dtype '<i3' are not allowed"),
    ({"classes_dtype": "<U9999999"}, "2 class labels of dtype <U9999999 for 2 outputs"),
    ({"classes": [0, 300], "classes_dtype": "|u1"}, "out of bounds"),
    ({"classes": [0, 1], "classes_dtype": "<f8", "y_1d": True}, "y_1d does not fit"),
    ({"loss": "mse"}, "classes / y_1d do not fit a mse model"),
])
def test_bad_metadata_is_refused(saved, change, message):
    _, _, meta, params = saved
    with pytest.raises(ValueError, match=message):
        fastnn.MLP.load(write_model({**meta, **change}, params))


@pytest.mark.parametrize("text, message", [
    pytest.param("{", "Expecting property name", id="unclosed"),
    pytest.param("[1, 2]", "does not say", id="a list"),
    pytest.param('{"format": NaN}', "holds NaN", id="NaN"),
    pytest.param('{"format": "fastnn.MLP", "format_version": Infinity}', "holds Infinity", id="Infinity"),
    pytest.param('{"format": "fastnn.MLP", "format_version": 1' + "0" * 5000 + "}", "digits", id="5000 digits"),
    pytest.param("[" * 100_000 + "]" * 100_000, "recursion", id="deep nesting"),
])
def test_malformed_json_is_refused(saved, text, message):
    _, _, _, params = saved
    with pytest.raises(ValueError, match=message):
        fastnn.MLP.load(write_model(text, params))


def test_missing_metadata_fields_are_named(saved):
    _, _, meta, params = saved
    partial = {k: v for k, v in meta.items() if k != "classes"}
    with pytest.raises(ValueError, match="fields missing: \\['classes'\\]"):
        fastnn.MLP.load(write_model(partial, params))
