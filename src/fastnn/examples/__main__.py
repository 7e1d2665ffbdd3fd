"""python -m fastnn.examples {penguins,diabetes,digits} [--out DIR]"""
import argparse
import importlib

from . import EXAMPLES, __doc__ as DOC


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastnn.examples", description=DOC.splitlines()[0])
    parser.add_argument("example", choices=EXAMPLES)
    parser.add_argument("--out", default=".", help="directory for the loss-curve PNG (default: here)")
    args = parser.parse_args(argv)
    importlib.import_module(f"{__package__}.{args.example}").run(out_dir=args.out)


if __name__ == "__main__":
    main()
