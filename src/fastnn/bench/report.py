"""The run's results as a readable table (text or Markdown), as JSON, and as a PNG chart."""
import json

from .machine import optional


def _num(x, digits=3):
    """Figures at `digits` significant digits, with thousands separators: 1,234,567 / 45.6 / 0.123."""
    if x is None:
        return "-"
    if abs(float(f"{x:.{digits}g}")) >= 10 ** digits:    # by value once rounded: 99.7 at 2 digits is 100
        return f"{x:,.0f}"
    return f"{x:#.{digits}g}".rstrip(".")


def _pct(x):
    return "-" if x is None else f"{_num(100 * x, 2)}%"


def _render(headers, rows, markdown):
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        return lines + ["| " + " | ".join(r) + " |" for r in rows]
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows)]
    fmt = lambda r: "  ".join(c.rjust(w) if k > 1 else c.ljust(w) for k, (c, w) in enumerate(zip(r, widths)))
    return [fmt(headers), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows]


def _throughput_rows(rows, with_rates):
    out = []
    for r in rows:
        s = r["samples_per_s"]
        line = [str(r["threads"]), r["contender"], _num(s["median"]), _num(s["min"]), _num(s["max"]),
                _num(r["fastnn_ratio"]) + "x"]
        if with_rates:
            line += [_num(r["gflops"]), _pct(r["share_gemm"]), _pct(r["share_fma"])]
        out.append(line)
    return out


def _checks(checks):
    bad = [n for n, c in checks.items() if not c["ok"]]
    worst = max(c["max_abs_diff"] for c in checks.values())
    return f"max |diff| {worst:.1e} -> {'FAILED for ' + ', '.join(bad) if bad else 'OK'}"


def _heading(markdown):
    return "## " if markdown else ""


def _clocks(m):
    """'; 1 thread 2.91 GHz, 2 threads 2.88 GHz' when the clock was measured at several thread counts"""
    by = m.get("ghz_by_threads") or {}
    if len(set(by.values())) < 2:
        return ""
    return "; " + ", ".join(f"{t} thread{'s' if t != '1' else ''} {_num(g)} GHz" for t, g in by.items())


def header_lines(results, markdown=False):
    """The run's machine, GEMM rate and method."""
    m = results["machine"]
    out = [f"{_heading(markdown)}fastnn {m['versions']['fastnn']} benchmark"
           f"{' (QUICK: not for quoting)' if results['quick'] else ''}",
           f"machine: {m['cpu']}, {m['cores']} cores, {_num(m['ghz'])} GHz ({m['ghz_source']}{_clocks(m)}), FMA limit "
           f"{_num(m['fma_limit_gflops'])} GFLOP/s ({m.get('fma_formula', '')}); " +
           ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v),
           "float32 GEMM (NumPy @, 2048x2048), GFLOP/s: " +
           "; ".join(f"{t} thread(s) {_num(s['median'])} [{_num(s['min'])}, {_num(s['max'])}]"
                     for t, s in results["gemm_gflops"].items()),
           f"medians of {results['repeats']} timed repetitions after a warm-up, interleaved across contenders; "
           "'fastnn x' is fastnn's median over the row's, at the same thread count"]
    return out + [f"note: {n}" for n in results["notes"]]


RATE_HEADERS = ["threads", "contender", "samples/s", "min", "max", "fastnn x"]


def training_lines(w, markdown=False):
    v = w["verification"]
    out = ["", f"{_heading(markdown)}{w['workload']} {w['title']}: {'-'.join(map(str, w['layers']))}, "
               f"batch {w['batch']}, {w['samples_per_epoch']:,} samples per epoch, {w['weights']:,} weights",
           f"check: compiled vs reference mean loss after one epoch from the same weights: "
           f"{v['loss_compiled']:.6f} vs {v['loss_reference']:.6f}, rel. diff {v['rel_diff']:.1e} "
           f"(tolerance {v['rtol']:.0e}) -> {'OK' if v['ok'] else 'FAILED'}",
           f"check: every contender's predict_proba from those weights vs fastnn's: "
           f"{_checks(w['same_initial_model'])}", ""]
    return out + _render(RATE_HEADERS + ["GFLOP/s", "% GEMM", "% FMA"], _throughput_rows(w["results"], True), markdown)


def inference_lines(w, markdown=False):
    out = ["", f"{_heading(markdown)}inference {w['workload']}: predict_proba on {w['samples']:,} samples in one call",
           f"check: same probabilities from the same weights: {_checks(w['same_results'])}", ""]
    return out + _render(RATE_HEADERS, _throughput_rows(w["results"], False), markdown)


def memory_lines(mem, markdown=False):
    out = ["", f"{_heading(markdown)}memory (each in a fresh interpreter)"]
    g, p = mem["growth"], mem["peak"]
    if "error" in g:
        out.append(f"RSS growth: failed: {g['error']}")
    else:
        out.append(f"W1 RSS growth over fit(epochs={g['epochs']}): {g['growth_one_fit'] / 2**20:+.2f} MiB; over "
                   f"{g['epochs']} calls of fit(epochs=1): {g['growth_fit_calls'] / 2**20:+.2f} MiB "
                   f"({g['samples']:,} samples)")
    if "error" in p:
        out.append(f"W3 peak RSS: failed: {p['error']}")
    else:
        parts = " + ".join(f"{k} {v / 2**20:.1f}" for k, v in p["parts"].items())
        out.append(f"W3 peak RSS over {p['epochs']} epochs of {p['samples']:,} samples: {p['peak'] / 2**20:.1f} MiB "
                   f"= {p['peak_over_estimate']:.2f}x the estimate {p['estimate'] / 2**20:.1f} MiB "
                   f"(baseline {p['baseline'] / 2**20:.1f} + {parts})")
    return out


def lines(results, markdown=False):
    """The whole report, as a list of lines."""
    out = header_lines(results, markdown)
    if results["memory"]:
        out += memory_lines(results["memory"], markdown)
    for w in results["training"]:
        out += training_lines(w, markdown)
    for w in results["inference"]:
        out += inference_lines(w, markdown)
    out += ["", f"run took {results['seconds']:.0f} s"]
    if markdown:  # hard line breaks, so that consecutive text lines are not run into one paragraph
        out = [line + "  " if line and not line.startswith(("|", "#")) else line for line in out]
    return out


def write_json(results, path):
    with open(path, "w") as f:
        json.dump(results, f, indent=1)


def write_chart(results, path):
    """Throughput per workload and contender (log scale), training and inference side by side.
    Returns None, or why no chart was drawn."""
    matplotlib = optional("matplotlib")
    if matplotlib is None:
        return "matplotlib is not installed (pip install matplotlib): no chart"
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("training", results["training"]), ("inference (predict_proba)", results["inference"])]
    panels = [(t, ws) for t, ws in panels if ws]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 + 4 * len(panels), 4.5), squeeze=False, layout="constrained",
                             width_ratios=[len(ws) for _, ws in panels])
    # one colour per contender and one hatch per thread count, the same in both panels
    colours = {c: plt.cm.tab10(k % 10) for k, c in enumerate(results["contenders"])}
    hatches = {t: h for t, h in zip(results["threads"], ["", "//", "xx", "..", "--", "++"] * 8)}
    for ax, (title, workloads) in zip(axes[0], panels):
        keys = list(dict.fromkeys((r["contender"], r["threads"]) for w in workloads for r in w["results"]))
        width = 0.8 / len(keys)
        for k, (contender, threads) in enumerate(keys):
            xs, ys, lo, hi = [], [], [], []
            for x, w in enumerate(workloads):
                for r in w["results"]:
                    if (r["contender"], r["threads"]) == (contender, threads):
                        s = r["samples_per_s"]
                        xs.append(x + (k - (len(keys) - 1) / 2) * width)
                        ys.append(s["median"])
                        lo.append(s["median"] - s["min"])
                        hi.append(s["max"] - s["median"])
            ax.bar(xs, ys, width, yerr=[lo, hi], capsize=2, color=colours[contender], hatch=hatches[threads],
                   edgecolor="white", label=f"{contender}, {threads} thread{'s' if threads > 1 else ''}")
        ax.set_xticks(range(len(workloads)), [f"{w['workload']} {w['title']}" for w in workloads])
        ax.set_yscale("log")
        ax.set_ylabel("samples/s (median, min-max)")
        ax.set_title(title)
    # one legend beside the panels, from training's bars (a superset of inference's): it hides no bar
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="outside right upper", fontsize="small")
    m = results["machine"]
    fig.suptitle(f"fastnn {m['versions']['fastnn']} on {m['cpu']}, {m['cores']} cores"
                 f"{' (quick run)' if results['quick'] else ''}", fontsize="medium")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return None
