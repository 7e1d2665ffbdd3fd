"""python -m fastnn.bench: the comparison run; see fastnn/bench/__init__.py and bench/README.md."""
import argparse
import os
import sys

from . import report, runner
from .contenders import CONTENDERS, available, parse_contenders
from .machine import cores
from .workloads import WORKLOADS, parse_workloads

# W4's one quick batch alone is ~30 GFLOP per contender and epoch, most of a quick run: ask for it by name
QUICK_WORKLOADS = "W1,W2,W3"


def _threads(text):
    try:
        counts = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--threads takes comma-separated positive integers, got {text!r}")
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"--threads takes comma-separated positive integers, got {text!r}")
    return list(dict.fromkeys(counts))


def _parsed(parse):
    def convert(text):
        try:
            return parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e))
    return convert


def _positive(kind):
    def convert(text):
        try:
            value = kind(text)
        except ValueError:
            value = 0
        if not value > 0:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
        return value
    return convert


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastnn.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", type=_parsed(parse_workloads),
                        help=f"comma-separated, default all: {','.join(WORKLOADS)} (with --quick: {QUICK_WORKLOADS})")
    parser.add_argument("--threads", type=_threads, default=sorted({1, min(2, cores())}),
                        help="comma-separated thread counts, default 1,2")
    parser.add_argument("--contenders", type=_parsed(parse_contenders), default=list(CONTENDERS),
                        help="comma-separated, default all: " + ",".join(CONTENDERS) + " (fastnn always runs)")
    parser.add_argument("--quick", action="store_true", help="few samples and repeats, for a try: not for quoting")
    parser.add_argument("--repeats", type=_positive(int), help="timed repetitions (default 5; 3 with --quick)")
    parser.add_argument("--ghz", type=_positive(float),
                        help="the clock for the FMA limit (default: measured at each thread count)")
    parser.add_argument("--no-memory", dest="memory", action="store_false", help="skip the RSS measurements")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON")
    parser.add_argument("--chart", metavar="PATH", help="draw a PNG chart of throughput (needs matplotlib)")
    parser.add_argument("--markdown", metavar="PATH", help="write the tables as Markdown")
    args = parser.parse_args(argv)
    for path in (args.json, args.chart, args.markdown):  # fail now, not after a long run
        if path and not os.access(os.path.dirname(os.path.abspath(path)), os.W_OK):
            parser.error(f"cannot write {path}: its directory does not exist or is not writable")
    if args.workloads is None:
        args.workloads = parse_workloads(QUICK_WORKLOADS if args.quick else ",".join(WORKLOADS))

    log = lambda msg: print(msg, file=sys.stderr, flush=True)
    contenders, notes = available(args.contenders)
    settings = runner.Settings(args.workloads, args.threads, contenders, notes, quick=args.quick,
                               repeats=args.repeats, ghz=args.ghz, memory=args.memory, log=log)
    results = runner.run(settings)
    results["command"] = " ".join([parser.prog] + list(sys.argv[1:] if argv is None else argv))
    print(f"\nrun took {results['seconds']:.0f} s")
    if args.json:
        report.write_json(results, args.json)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write("\n".join(report.lines(results, markdown=True)) + "\n")
    if args.chart:
        problem = report.write_chart(results, args.chart)
        if problem:
            log(problem)
    checks = [w["verification"] for w in results["training"]] + \
        [c for w in results["training"] for c in w["same_initial_model"].values()] + \
        [c for w in results["inference"] for c in w["same_results"].values()]
    if not all(c["ok"] for c in checks):
        log("a check FAILED: the contenders do not compute the same thing; see the table")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
