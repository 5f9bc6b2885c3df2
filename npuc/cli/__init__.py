"""`npuc` command line: compile, sim, run, export-qdq, analyze, demo, hw.

The parser is built here; each subcommand is one function in `commands.py`;
the compile family's options become objects once, in `options.py`. Every
user error ends in one line `npuc: error: ...` naming the file, node or line,
and exit code 1; `--debug` shows the traceback instead.

Lean start: `main` adds the compile-family options (whose choices come from
registries that load the compiler, networkx included) only to the command
being run, so `npuc sim` loads what simulation needs and nothing else.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings
from collections.abc import Callable, Sequence

from ..errors import one_line, user_error_types
from . import commands
from .options import add_compile_options, positive_int

EXIT_USER_ERROR = 1


def _memory_size(text: str) -> int:
    from ..limits import parse_size

    try:
        return parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def command_of(argv: Sequence[str]) -> str | None:
    """The subcommand named in `argv` (the first word that is not a global option or its value)."""
    words = iter(argv)
    for word in words:
        if word == "--max-memory":
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; with `command`, the compile-family options go to that command only
    (the others get none: they are not being run)."""

    def compile_options(p: argparse.ArgumentParser, name: str) -> None:
        if command is None or command == name:
            add_compile_options(p)

    parser = argparse.ArgumentParser(prog="npuc", description="int8 NPU compiler and cycle-accurate simulator")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    parser.add_argument("--max-memory", type=_memory_size, default=None, metavar="SIZE",
                        help="refuse inputs that need more memory than SIZE (e.g. 8G; 0: no limit; "
                             "default: $NPUC_MAX_MEMORY or 4G)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("compile", help="ONNX -> NPU assembly")
    compile_options(p, "compile")
    p.add_argument("-o", "--output", default=None, help="assembly file to write (default: MODEL.s)")
    p.set_defaults(func=commands.cmd_compile)

    p = sub.add_parser("sim", help="simulate an NPU assembly program")
    p.add_argument("program", help="prog.s")
    p.add_argument("--input", default=None, help="x.npy or x.npz, batch first (default: seeded random)")
    p.add_argument("-o", "--output", default=None, help="write outputs (float and :int8) to this .npz")
    p.add_argument("--trace", default=None, metavar="FILE.json", help="write a Chrome/Perfetto trace")
    p.add_argument("--stats", action="store_true", help="per-layer breakdown")
    p.add_argument("--stats-format", choices=("text", "csv", "json"), default="text",
                   help="text (default), or csv / json for tools: the per-layer table and the totals alone on "
                        "stdout (the other lines go to stderr)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random input")
    p.add_argument("--max-work", type=positive_int, default=None, metavar="N",
                   help="stop a program after N processed elements (default 2^37: a runaway guard)")
    p.add_argument("--no-cache", action="store_true",
                   help="parse prog.s even when its binary cache (prog.s.<sha>.npub) is valid, and write none")
    p.add_argument("--threads", type=positive_int, default=None, metavar="N",
                   help="samples of a batch simulated at once (default: the CPUs); the first sample is "
                        "simulated in full, the others replay its data path alone (cycles do not depend on data)")
    p.set_defaults(func=commands.cmd_sim)

    p = sub.add_parser("run", help="compile and simulate, compare with fp32 and the numpy reference")
    compile_options(p, "run")
    p.add_argument("--input", default=None, help="x.npy or x.npz, batch first (default: 4 random samples)")
    p.add_argument("--stats", action="store_true", help="per-layer breakdown")
    p.set_defaults(func=commands.cmd_run)

    p = sub.add_parser("export-qdq", help="write the quantized model as an ONNX QDQ model (ORT oracle)")
    compile_options(p, "export-qdq")
    p.add_argument("-o", "--output", default=None, help="ONNX file to write (default: MODEL_qdq.onnx)")
    p.add_argument("--form", choices=("auto", "qdq", "integer"), default="auto",
                   help="qdq (QuantizeLinear/DequantizeLinear) or integer (ConvInteger + int64 requantization); "
                        "auto: qdq for half_even rounding, integer otherwise")
    p.add_argument("--int8-outputs", action="store_true", help="graph outputs are the int8 tensors")
    p.set_defaults(func=commands.cmd_export_qdq)

    p = sub.add_parser("analyze", help="per-layer quantization error against fp32, by cause, with cycles")
    compile_options(p, "analyze")
    p.add_argument("--max-samples", type=positive_int, default=256, help="analyze at most this many samples")
    p.set_defaults(func=commands.cmd_analyze)

    p = sub.add_parser("sweep", help="compile and simulate a grid of hardware and quantization settings")
    p.add_argument("model", help="ONNX model file")
    p.add_argument("--grid", required=True, metavar="G.toml", help="the grid: hardware sections and [compile]")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="results, caches and plot go here")
    p.add_argument("--calib", default=None, help="calibration data (as for compile)")
    p.add_argument("--data", default=None, metavar="X.npy", help="inputs to measure on (default: --calib)")
    p.add_argument("--labels", default=None, metavar="Y.npy", help="integer labels of --data (accuracy)")
    p.add_argument("--hw", default=None, help="the hardware every point starts from (default: default)")
    p.add_argument("--input-shape", action="append", default=[], metavar="NAME:D0,D1,..",
                   help="fix an input's dynamic dimensions")
    p.add_argument("--no-fallback", action="store_true", help="an op the NPU cannot run fails the point")
    p.add_argument("--jobs", type=positive_int, default=1, metavar="N", help="points run in parallel")
    p.add_argument("--executor", choices=("local", "dask"), default="local",
                   help="local process pool, or a Dask cluster (pip install 'npuc[cluster]')")
    p.add_argument("--scheduler", default=None, metavar="ADDR",
                   help="the Dask scheduler to use (default: a local cluster of --jobs workers)")
    p.add_argument("--retry-failed", action="store_true", help="recompute the points an earlier run failed")
    p.set_defaults(func=commands.cmd_sweep)

    p = sub.add_parser("demo", help="compile and simulate the bundled CNN")
    p.add_argument("--hw", default=None, help="hardware preset name or TOML file (default: default)")
    p.add_argument("--stats", action="store_true", help="per-layer breakdown")
    p.set_defaults(func=commands.cmd_demo)

    p = sub.add_parser("hw", help="print a hardware preset as TOML")
    p.add_argument("preset", nargs="?", default="default")
    p.add_argument("--list", action="store_true", help="list the presets")
    p.set_defaults(func=commands.cmd_hw)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(command_of(argv))
    try:
        args = parser.parse_args(argv)
    except argparse.ArgumentTypeError as e:
        parser.error(str(e))
    run: Callable[[argparse.Namespace], int] = args.func
    from ..limits import memory_limit

    if args.debug:
        with memory_limit(args.max_memory):
            return run(args)
    try:
        # numpy's overflow warnings on absurd data precede an error that names the problem;
        # without --debug the user gets that one line only
        with memory_limit(args.max_memory), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return run(args)
    except argparse.ArgumentTypeError as e:
        print(f"npuc: error: {one_line(e)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("npuc: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `npuc sim ... | head`: the reader left; not an error of the input
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except MemoryError as e:
        print(f"npuc: error: out of memory ({one_line(e)}); the input needs more memory than this machine has",
              file=sys.stderr)
        return EXIT_USER_ERROR
    except Exception as e:  # noqa: BLE001 - sorted into user errors and bugs below
        if isinstance(e, user_error_types()):
            print(f"npuc: error: {one_line(e)}", file=sys.stderr)
            return EXIT_USER_ERROR
        print(f"npuc: internal error ({type(e).__name__}): {one_line(e)}\n"
              f"  this is a bug in npuc; rerun with --debug for the traceback", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
