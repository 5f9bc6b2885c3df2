"""`npuc` command line: compile, sim, run, demo, hw.

Every user error ends in one line `npuc: error: ...` naming the file, node or
line, and exit code 1; `--debug` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

EXIT_USER_ERROR = 1


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean bad input, not a bug in npuc."""
    from .backend import BackendError
    from .calib import CalibrationError
    from .frontend import FrontendError
    from .host import HostError
    from .hw import HwConfigError
    from .ir import IRError
    from .isa.asm import AsmError
    from .limits import ResourceError
    from .passes import PassError
    from .sim.core import SimError
    from .sim.driver import InputError

    return (PassError, BackendError, CalibrationError, FrontendError, HwConfigError, IRError, AsmError, SimError, InputError,
            ResourceError, HostError, OSError)


def parse_input_shapes(specs: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """`name:1,3,224,224` -> {"name": (1, 3, 224, 224)}."""
    shapes: dict[str, tuple[int, ...]] = {}
    for spec in specs:
        name, sep, dims = spec.rpartition(":")
        try:
            if not sep or not name:
                raise ValueError
            shapes[name] = tuple(int(d) for d in dims.split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(f"--input-shape {spec!r}: expected NAME:D0,D1,...") from None
    return shapes


def load_inputs(path: str | None) -> dict[str, np.ndarray] | None:
    """A .npy (the single input) or a .npz keyed by input name."""
    if path is None:
        return None
    p = Path(path)
    from .sim.driver import InputError

    try:
        data = np.load(p, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise InputError(f"{p}: cannot read as .npy/.npz: {e}") from None
    if isinstance(data, np.ndarray):
        return {"": data}
    return {k: data[k] for k in data.files}


def _hw_from_args(args: argparse.Namespace):
    from .hw import load_hw

    hw = load_hw(args.hw)
    changes = {}
    if getattr(args, "per_tensor", False):
        changes["weight_granularity"] = "per_tensor"
    if getattr(args, "asymmetric", False):
        changes["act_mode"] = "asymmetric"
    if getattr(args, "rounding", None):
        changes["rounding"] = args.rounding
    if getattr(args, "scale_rule", None):
        changes["scale_rule"] = args.scale_rule
    hw = hw.replace(**changes) if changes else hw
    from .limits import check_compile_hw

    check_compile_hw(hw)
    return hw


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


def calib_kwargs(args: argparse.Namespace) -> dict:
    """compile_model's calibration arguments from --calib-samples and --calib-batch."""
    return {"calib_samples": getattr(args, "calib_samples", None), "calib_batch": getattr(args, "calib_batch", 16),
            "progress": True}


def _precision_kwargs(args: argparse.Namespace) -> dict:
    """compile_model's mixed-precision arguments from --float-layers, --sqnr-target, --keep-accuracy,
    --data, --labels."""
    from .calib import CalibrationError
    from .passes.mixed_precision import Budget

    layers = [n.strip() for n in (args.float_layers or "").split(",") if n.strip()]
    budget = None
    if args.sqnr_target is not None or args.keep_accuracy is not None:
        budget = Budget(args.sqnr_target, args.keep_accuracy)
    if args.keep_accuracy is not None and (args.data is None or args.labels is None):
        raise CalibrationError("--keep-accuracy needs labelled data: give --data X.npy and --labels Y.npy")
    kw: dict = {"float_layers": layers, "budget": budget, "equalize": args.equalize,
                "bias_correction": args.bias_correction}
    for key, path, what in (("eval_data", args.data, "data"), ("eval_labels", args.labels, "labels")):
        if path is not None:
            try:
                kw[key] = np.load(path, allow_pickle=False)
            except (ValueError, OSError) as e:
                raise CalibrationError(f"{path}: cannot read {what} as .npy: {e}") from None
    if "eval_labels" in kw:
        kw["eval_labels"] = kw["eval_labels"].astype(np.int64).ravel()
        n = len(kw["eval_data"]) if "eval_data" in kw else None
        if n is not None and len(kw["eval_labels"]) != n:
            raise CalibrationError(f"{args.labels}: {len(kw['eval_labels'])} labels for {n} samples in {args.data}")
    return kw


def _print_precision(result) -> None:
    if result.mixed is not None:
        print("\n".join(result.mixed.summary()))


def cmd_compile(args: argparse.Namespace) -> int:
    from .compiler import compile_model
    from .isa.asm import write_program

    hw = _hw_from_args(args)
    result = compile_model(args.model, hw, calib=args.calib, method=args.calib_method, **calib_kwargs(args),
                           input_shapes=parse_input_shapes(args.input_shape), dump_ir=args.dump_ir,
                           verify=args.verify, allow_fallback=not args.no_fallback, **_precision_kwargs(args))
    out = Path(args.output or Path(args.model).with_suffix(".s").name)
    write_program(result.program, out)
    prog = result.program
    _print_precision(result)
    for fb in result.fallbacks:
        print(f"fallback: {fb}")
    print(f"wrote {out}: {len(prog.insns)} instructions, {len(prog.layers)} layers, "
          f"{sum(len(d) for _, d in prog.data)} bytes of constants, DRAM {prog.dram_size} bytes; "
          f"calibrated on {result.calib_samples} samples from {result.calib_source}")
    return 0


def _bind_inputs(prog, inputs: dict[str, np.ndarray] | None, source: str) -> dict[str, np.ndarray] | None:
    if inputs is not None and "" in inputs:
        names = [t.name for t in prog.inputs()]
        from .sim.driver import InputError

        if len(names) != 1:
            raise InputError(f"{source}: a .npy holds one array but the program has inputs {names}; use .npz")
        inputs = {names[0]: inputs[""]}
    return inputs


def _write_outputs(path: str, result) -> None:
    import io

    from .fsutil import atomic_write_bytes

    arrays = dict(result.outputs)
    arrays.update({f"{k}:int8": v for k, v in result.raw.items()})
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def cmd_sim(args: argparse.Namespace) -> int:
    from .hw import HwConfig
    from .isa.asm import read_program
    from .limits import check_program, check_program_file
    from .report import format_stats
    from .sim.driver import DEFAULT_MAX_WORK, random_inputs, run_program, write_trace

    check_program_file(args.program, args.program)
    prog = read_program(args.program)
    check_program(prog, args.program)
    inputs = _bind_inputs(prog, load_inputs(args.input), args.input or "")
    if inputs is None:
        inputs = random_inputs(prog, seed=args.seed)
    result = run_program(prog, inputs, trace=bool(args.trace), source=args.input or "random input",
                         max_work=args.max_work or DEFAULT_MAX_WORK,
                         program_name=args.program)
    hw = HwConfig.from_flat(prog.hw, source=args.program)
    print(format_stats(result.stats[0], hw, result.layers if args.stats else None, samples=len(result.stats),
                       hosts=result.hosts))
    for name, q in result.raw.items():
        print(f"output {name}: shape {tuple(q.shape)}, int8 range [{int(q.min())}, {int(q.max())}]")
    if args.output:
        _write_outputs(args.output, result)
        print(f"wrote {args.output}")
    if args.trace:
        write_trace(prog, result, Path(args.trace))
        print(f"wrote {args.trace}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Compile and simulate in one go, comparing with the fp32 model."""
    from .compiler import compile_model
    from .evaluate import compare_with_float
    from .limits import check_program
    from .report import format_stats
    from .sim.driver import run_program

    hw = _hw_from_args(args)
    result = compile_model(args.model, hw, calib=args.calib, method=args.calib_method, **calib_kwargs(args),
                           input_shapes=parse_input_shapes(args.input_shape), allow_fallback=not args.no_fallback,
                           **_precision_kwargs(args))
    _print_precision(result)
    for fb in result.fallbacks:
        print(f"fallback: {fb}")
    check_program(result.program, args.model)
    inputs = _bind_inputs(result.program, load_inputs(args.input), args.input or "")
    if inputs is None:
        from .calib import random_calibration

        inputs = _stack(random_calibration(result.float_ir, n=4, seed=1))
    run = run_program(result.program, inputs)
    print(format_stats(run.stats[0], hw, run.layers if args.stats else None, samples=len(run.stats),
                       hosts=run.hosts))
    print(compare_with_float(args.model, result, inputs, run))
    return 0


def _stack(samples: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.stack([s[k] for s in samples]) for k in samples[0]}


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(hw_spec=args.hw, show_layers=args.stats)


def cmd_hw(args: argparse.Namespace) -> int:
    from .hw import load_hw, presets

    if args.list:
        print("\n".join(presets()))
        return 0
    print(load_hw(args.preset).to_toml(), end="")
    return 0


def _add_compile_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="ONNX model file")
    p.add_argument("--hw", default=None, help="hardware preset name or TOML file (default: default)")
    p.add_argument("--calib", default=None,
                   help="calibration data: .npy (samples on axis 0), .npz keyed by input, or a directory of .npy")
    p.add_argument("--calib-method", default="minmax", help="minmax | percentile | entropy | mse")
    p.add_argument("--calib-samples", type=_positive_int, default=None, metavar="N",
                   help="use the first N calibration samples (default: all)")
    p.add_argument("--calib-batch", type=_positive_int, default=16, metavar="B",
                   help="samples per batch of the calibration runs (default: 16)")
    p.add_argument("--per-tensor", action="store_true", help="per-tensor instead of per-channel weight scales")
    p.add_argument("--asymmetric", action="store_true", help="asymmetric activations (zero points)")
    p.add_argument("--rounding", choices=("half_even", "half_up", "truncate"), default=None)
    p.add_argument("--scale-rule", choices=("pow2", "fixed_point", "float"), default=None)
    p.add_argument("--input-shape", action="append", default=[], metavar="NAME:D0,D1,..",
                   help="fix an input's dynamic dimensions")


def _add_fallback_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-fallback", action="store_true",
                   help="an op the NPU cannot run is an error instead of running on the host")


def _add_precision_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("mixed precision (sensitive layers in host float) and error correction")
    g.add_argument("--float-layers", default=None, metavar="NAME,..",
                   help="run these Conv/Gemm layers in float on the host")
    g.add_argument("--sqnr-target", type=float, default=None, metavar="DB",
                   help="move the most sensitive layers to host float until the output SQNR vs fp32 reaches DB")
    g.add_argument("--keep-accuracy", type=float, default=None, metavar="PP",
                   help="... until at most PP percentage points of accuracy are lost (needs --data, --labels)")
    g.add_argument("--data", default=None, metavar="X.npy",
                   help="inputs the budget is measured on, batch first (default: the calibration samples)")
    g.add_argument("--labels", default=None, metavar="Y.npy", help="integer labels of --data")
    g.add_argument("--equalize", action="store_true",
                   help="cross-layer equalization of Conv/Gemm pairs before calibration")
    g.add_argument("--bias-correction", action="store_true",
                   help="empirical bias correction on the calibration samples after quantization")


def _memory_size(text: str) -> int:
    from .limits import parse_size

    try:
        return parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _one_line(e: BaseException) -> str:
    """An error message as one line (some library messages span several)."""
    return "; ".join(line.strip() for line in str(e).strip().splitlines() if line.strip()) or type(e).__name__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="npuc", description="int8 NPU compiler and cycle-accurate simulator")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    parser.add_argument("--max-memory", type=_memory_size, default=None, metavar="SIZE",
                        help="refuse inputs that need more memory than SIZE (e.g. 8G; 0: no limit; "
                             "default: $NPUC_MAX_MEMORY or 4G)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("compile", help="ONNX -> NPU assembly")
    _add_compile_options(p)
    _add_fallback_option(p)
    _add_precision_options(p)
    p.add_argument("-o", "--output", default=None, help="assembly file to write (default: MODEL.s)")
    p.add_argument("--dump-ir", default=None, metavar="DIR", help="write the IR after each pass into DIR")
    p.add_argument("--verify", action="store_true", help="verify IR invariants between passes")
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser("sim", help="simulate an NPU assembly program")
    p.add_argument("program", help="prog.s")
    p.add_argument("--input", default=None, help="x.npy or x.npz, batch first (default: seeded random)")
    p.add_argument("-o", "--output", default=None, help="write outputs (float and :int8) to this .npz")
    p.add_argument("--trace", default=None, metavar="FILE.json", help="write a Chrome/Perfetto trace")
    p.add_argument("--stats", action="store_true", help="per-layer breakdown")
    p.add_argument("--seed", type=int, default=0, help="seed of the random input")
    p.add_argument("--max-work", type=_positive_int, default=None, metavar="N",
                   help="stop a program after N processed elements (default 2^37: a runaway guard)")
    p.set_defaults(func=cmd_sim)

    p = sub.add_parser("run", help="compile and simulate, compare with fp32")
    _add_compile_options(p)
    _add_fallback_option(p)
    _add_precision_options(p)
    p.add_argument("--input", default=None)
    p.add_argument("--stats", action="store_true")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("demo", help="compile and simulate the bundled CNN")
    p.add_argument("--hw", default=None)
    p.add_argument("--stats", action="store_true", help="per-layer breakdown")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("hw", help="print a hardware preset as TOML")
    p.add_argument("preset", nargs="?", default="default")
    p.add_argument("--list", action="store_true", help="list the presets")
    p.set_defaults(func=cmd_hw)
    from .quant_cli import add_quant_commands

    add_quant_commands(sub, _add_compile_options, _hw_from_args, parse_input_shapes)  # export-qdq, analyze
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except argparse.ArgumentTypeError as e:
        parser.error(str(e))
    run: Callable[[argparse.Namespace], int] = args.func
    from .limits import memory_limit

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
        print(f"npuc: error: {_one_line(e)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("npuc: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `npuc sim ... | head`: the reader left; not an error of the input
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except MemoryError as e:
        print(f"npuc: error: out of memory ({_one_line(e)}); the input needs more memory than this machine has",
              file=sys.stderr)
        return EXIT_USER_ERROR
    except Exception as e:  # noqa: BLE001 - sorted into user errors and bugs below
        if isinstance(e, _user_errors()):
            print(f"npuc: error: {_one_line(e)}", file=sys.stderr)
            return EXIT_USER_ERROR
        print(f"npuc: internal error ({type(e).__name__}): {_one_line(e)}\n"
              f"  this is a bug in npuc; rerun with --debug for the traceback", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
