"""Smoke test of the comparison runner (python -m fastnn.bench): a tiny quick run, its JSON's structure and
that its figures are positive. No timing assertions: speed targets live in bench/."""
import json
import subprocess
import sys

import pytest

from fastnn.bench.__main__ import main
from fastnn.bench.machine import fma_lanes, fma_limit_gflops, machine_info, python_env
from fastnn.bench.runner import add_rates
from fastnn.bench.workloads import WORKLOADS
from fastnn.bench.workloads import parse_workloads


def _positive_rates(rows, contenders, threads):
    assert {(r["contender"], r["threads"]) for r in rows} == {(c, t) for c in contenders for t in threads}
    for r in rows:
        s = r["samples_per_s"]
        assert 0 < s["min"] <= s["median"] <= s["max"], r
        assert r["fastnn_ratio"] > 0 and r["units_per_repeat"] >= 1


def test_quick_run_writes_consistent_json(tmp_path):
    out = tmp_path / "bench.json"
    md = tmp_path / "bench.md"
    # in a fresh interpreter, as a user runs it: the run sets process-wide thread counts
    done = subprocess.run([sys.executable, "-m", "fastnn.bench", "--quick", "--workloads", "W1", "--threads", "1",
                           "--contenders", "fastnn,reference", "--repeats", "2", "--json", str(out),
                           "--markdown", str(md)], capture_output=True, text=True, env=python_env(), timeout=300)
    assert done.returncode == 0, done.stderr
    printed = done.stdout
    assert "W1 penguins" in printed and "-> OK" in printed
    assert md.read_text().count("| threads |") == 2  # one training and one inference table

    results = json.loads(out.read_text())
    assert results["quick"] is True and results["threads"] == [1]
    machine = results["machine"]
    assert machine["cores"] >= 1 and machine["cpu"] and machine["versions"]["fastnn"]
    assert results["gemm_gflops"]["1"]["median"] > 0

    [training] = results["training"]
    assert training["workload"] == "W1" and training["layers"] == [4, 16, 3]
    assert training["verification"]["ok"] and training["verification"]["rel_diff"] <= training["verification"]["rtol"]
    assert all(c["ok"] for c in training["same_initial_model"].values())
    _positive_rates(training["results"], ["fastnn", "reference"], [1])
    for r in training["results"]:
        assert r["gflops"] > 0 and r["share_gemm"] > 0
    assert [r["fastnn_ratio"] for r in training["results"] if r["contender"] == "fastnn"] == [1.0]

    [inference] = results["inference"]
    assert inference["workload"] == "W1" and inference["samples"] == 10_000
    _positive_rates(inference["results"], ["fastnn", "reference"], [1])

    growth, peak = results["memory"]["growth"], results["memory"]["peak"]
    assert growth["epochs"] == 50 and isinstance(growth["growth_one_fit"], int)
    assert peak["peak"] > peak["baseline"] > 0 and peak["peak_over_estimate"] > 0


@pytest.mark.parametrize("argv, message", [
    (["--workloads", "W9"], "unknown workload"),
    (["--threads", "0"], "positive integers"),
    (["--threads", "two"], "positive integers"),
    (["--contenders", "jax"], "unknown contender"),
    (["--repeats", "0"], "positive number"),
    (["--json", "/nonexistent/dir/out.json"], "cannot write"),
])
def test_bad_options_are_named(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_parse_workloads_dedupes_and_normalises():
    assert [w.name for w in parse_workloads("w3, W1,W3")] == ["W3", "W1"]


@pytest.mark.parametrize("vendor, family, model, lanes", [
    ("AuthenticAMD", 23, 1, 4),     # Zen (EPYC Naples): 128-bit FMA units
    ("AuthenticAMD", 23, 8, 4),     # Zen+
    ("AuthenticAMD", 23, 49, 8),    # Zen 2 (EPYC Rome): 256-bit
    ("AuthenticAMD", 25, 1, 8),     # Zen 3
    ("HygonGenuine", 24, 0, 4),     # Hygon Dhyana (Zen)
    ("GenuineIntel", 6, 85, 8),
    ("AuthenticAMD", 26, 2, 16),    # Zen 5 (EPYC Turin) showing AVX-512: 512-bit
])
def test_fma_limit_knows_the_128_bit_zen_units(vendor, family, model, lanes):
    text = (f"processor\t: 0\nvendor_id\t: {vendor}\ncpu family\t: {family}\nmodel\t\t: {model}\nmodel name\t: x\n"
            "flags\t\t: fpu sse2 avx2 fma avx512f avx512bw\n")
    assert fma_lanes(text) == lanes
    assert fma_lanes(text.replace(" avx512f", "")) == (8 if lanes == 16 else lanes)   # AVX-512 hidden: AVX2 only
    assert fma_lanes("") == 8       # nothing known (not Linux): the AVX2 formula
    assert fma_limit_gflops(2.0, 2, fma_lanes(text)) == 2 * lanes * 2 * 2.0 * 2


@pytest.mark.parametrize("threads", [1, 2])
def test_clock_probe_reads_a_clock_per_busy_thread(threads):
    """fastnn._clock: each thread's GHz over dependent adds, all threads at once; a CPU's clock, not a guess"""
    import fastnn._clock
    ghz = fastnn._clock.add_chain_ghz(threads, adds=50_000_000)
    if ghz is None:
        pytest.skip("no clock probe for this compiler/CPU")
    assert len(ghz) == (threads if fastnn._threads.openmp_enabled() else 1)
    assert all(0.2 < g < 8.0 for g in ghz), ghz
    with pytest.raises(ValueError, match="threads >= 1"):
        fastnn._clock.add_chain_ghz(0)


def test_fma_share_uses_each_thread_counts_clock():
    info = machine_info(ghz=2.5, threads=[2, 1])
    assert info["ghz_by_threads"] == {"1": 2.5, "2": 2.5} and info["ghz_source"] == "--ghz"
    assert info["fma_limit_gflops"] == fma_limit_gflops(2.5, info["cores"], info["fma_lanes"])
    info = dict(info, cores=2, fma_lanes=8, ghz=2.0, ghz_by_threads={"1": 3.0, "2": 2.0})
    workload = WORKLOADS["W2"]
    rows = [{"threads": t, "samples_per_s": {"median": 1e5}} for t in (1, 2)]
    gemm = {1: {"median": 40.0}, 2: {"median": 80.0}}
    gflops = 1e5 * workload.flops_per_sample / 1e9
    one, two = add_rates(rows, workload, gemm, info)
    assert one["share_fma"] == pytest.approx(gflops / (2 * 8 * 2 * 3.0 * 1))
    assert two["share_fma"] == pytest.approx(gflops / (2 * 8 * 2 * 2.0 * 2))
    assert two["share_gemm"] == pytest.approx(gflops / 80.0)


def test_figures_keep_their_digits_where_rounding_carries():
    from fastnn.bench.report import _num, _pct
    assert [_num(99.7, 2), _num(45.6), _num(1234567.0), _num(0.1234)] == ["100", "45.6", "1,234,567", "0.123"]
    assert _pct(0.997) == "100%" and _pct(0.0564) == "5.6%"
