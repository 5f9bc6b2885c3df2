"""One function per `npuc` subcommand: arguments in, a report on stdout, an exit code out.

Imports are inside the functions so `npuc sim` loads neither the compiler nor
onnx, and `npuc hw` nothing but the hardware config.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .options import compile_from_request, compile_request, hw_from_args


def load_inputs(path: str | None) -> dict[str, np.ndarray] | None:
    """A .npy (the single input, keyed "") or a .npz keyed by input name."""
    if path is None:
        return None
    from ..fsutil import FileReadError, read_cause
    from ..sim.driver import InputError

    try:
        data = np.load(Path(path), allow_pickle=False)
    except OSError as e:
        if isinstance(e, FileNotFoundError | IsADirectoryError | PermissionError | NotADirectoryError):
            raise FileReadError(path, read_cause(path, e), e.errno) from None
        raise InputError(f"{path}: cannot read as .npy/.npz: {e}") from None
    except ValueError as e:
        raise InputError(f"{path}: cannot read as .npy/.npz: {e}") from None
    if isinstance(data, np.ndarray):
        return {"": data}
    return {k: data[k] for k in data.files}


def bind_inputs(prog: Any, inputs: dict[str, np.ndarray] | None, source: str) -> dict[str, np.ndarray] | None:
    """A .npy's one array becomes the program's one input; a program with several needs a .npz."""
    if inputs is not None and "" in inputs:
        from ..sim.driver import InputError

        names = [t.name for t in prog.inputs()]
        if len(names) != 1:
            raise InputError(f"{source}: a .npy holds one array but the program has inputs {names}; use .npz")
        inputs = {names[0]: inputs[""]}
    return inputs


def _print_fallbacks(compiled: Any) -> None:
    for fb in compiled.fallbacks:
        print(f"fallback: {fb}")


def cmd_compile(args: argparse.Namespace) -> int:
    from ..fsutil import check_writable
    from ..isa.asm import write_program

    out = Path(args.output or Path(args.model).with_suffix(".s").name)
    check_writable(out)  # before minutes of compiling
    compiled = compile_from_request(compile_request(args))
    write_program(compiled.program, out)
    prog = compiled.program
    _print_fallbacks(compiled)
    print(f"wrote {out}: {len(prog.insns)} instructions, {len(prog.layers)} layers, "
          f"{sum(len(d) for _, d in prog.data)} bytes of constants, DRAM {prog.dram_size} bytes; "
          f"calibrated on {compiled.calib_samples} samples from {compiled.calib_source}")
    return 0


def _write_outputs(path: str, result: Any) -> None:
    from ..fsutil import atomic_write_bytes

    arrays = dict(result.outputs)
    arrays.update({f"{k}:int8": v for k, v in result.raw.items()})
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def cmd_sim(args: argparse.Namespace) -> int:

    from ..fsutil import check_writable
    from ..hw import HwConfig
    from ..isa.load import load_program
    from ..limits import check_program, check_program_file
    from ..sim.driver import DEFAULT_MAX_WORK, random_inputs, run_program, write_trace
    from ..tools.report import format_stats

    for out in (args.output, args.trace):
        if out:
            check_writable(out)  # before the run, so a bad path costs no simulation and leaves nothing
    check_program_file(args.program, args.program)
    prog = load_program(args.program, cache=not args.no_cache)
    check_program(prog, args.program)
    inputs = bind_inputs(prog, load_inputs(args.input), args.input or "")
    if inputs is None:
        inputs = random_inputs(prog, seed=args.seed)
    result = run_program(prog, inputs, trace=bool(args.trace), source=args.input or "random input",
                         max_work=args.max_work or DEFAULT_MAX_WORK, program_name=args.program,
                         threads=args.threads)
    for warning in result.warnings:
        print(f"npuc: warning: {warning}", file=sys.stderr)
    hw = HwConfig.from_flat(prog.hw, source=args.program)
    fmt = args.stats_format
    shown = result.layers if args.stats or fmt != "text" else None
    print(format_stats(result.stats[0], hw, shown, samples=len(result.stats), hosts=result.hosts,
                       all_layers=result.layers, fmt=fmt))
    note = sys.stdout if fmt == "text" else sys.stderr  # csv / json: stdout holds the document alone
    for name, q in result.raw.items():
        if q.dtype == np.int8:
            print(f"output {name}: shape {tuple(q.shape)}, int8 range [{int(q.min())}, {int(q.max())}]", file=note)
        else:  # a host op's raw output (an ArgMax's int64, a Concat at dequantization's float32)
            print(f"output {name}: shape {tuple(q.shape)}, {q.dtype} range [{q.min():.6g}, {q.max():.6g}]",
                  file=note)
    if args.output:
        _write_outputs(args.output, result)
        print(f"wrote {args.output}", file=note)
    if args.trace:
        write_trace(prog, result, Path(args.trace))
        print(f"wrote {args.trace}", file=note)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Compile and simulate in one go, comparing with the fp32 model."""
    from ..compiler import stack_samples
    from ..limits import check_program
    from ..quant.calib_data import random_calibration
    from ..sim.driver import run_program
    from ..tools.evaluate import compare_with_float
    from ..tools.report import format_stats

    req = compile_request(args)
    compiled = compile_from_request(req)
    _print_fallbacks(compiled)
    check_program(compiled.program, args.model)
    inputs = bind_inputs(compiled.program, load_inputs(args.input), args.input or "")
    if inputs is None:
        inputs = stack_samples(random_calibration(compiled.float_ir, n=4, seed=1), compiled.float_ir)
    run = run_program(compiled.program, inputs)
    print(format_stats(run.stats[0], req.hw, run.layers if args.stats else None, samples=len(run.stats),
                       hosts=run.hosts, all_layers=run.layers))
    print(compare_with_float(args.model, compiled, inputs, run))
    return 0


def cmd_export_qdq(args: argparse.Namespace) -> int:
    import onnx

    from ..export import default_form, export_qdq
    from ..fsutil import atomic_write_bytes

    req = compile_request(args)
    compiled = compile_from_request(req)
    form = default_form(req.hw.rounding) if args.form == "auto" else args.form
    model = export_qdq(compiled.ir, form, int8_outputs=args.int8_outputs)
    out = Path(args.output or Path(args.model).stem + "_qdq.onnx")
    buf = io.BytesIO()
    onnx.save(model, buf)
    atomic_write_bytes(out, buf.getvalue())
    print(f"wrote {out}: {form} form, {len(model.graph.node)} nodes, scale rule {req.hw.scale_rule}, "
          f"rounding {req.hw.rounding}; calibrated on {compiled.calib_samples} samples from {compiled.calib_source}")
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    from ..quant.calib_data import CalibrationError, load_calibration
    from ..sim.driver import run_program
    from ..tools.analyze import analyze, format_analysis

    req = compile_request(args)
    compiled = compile_from_request(req)
    ir, hw = compiled.ir, req.hw
    if args.data is not None:
        samples = load_calibration(args.data, compiled.float_ir)
    elif args.calib is not None:
        samples = load_calibration(args.calib, compiled.float_ir)
    else:
        raise CalibrationError("analyze needs data: give --data X.npy (or --calib)")
    samples = samples[:args.max_samples]
    x = {n: np.stack([s[n] for s in samples]) for n in ir.inputs}
    labels = req.data.labels
    if labels is not None:
        labels = labels[:len(samples)]
        if len(labels) != len(samples):
            raise CalibrationError(f"{args.labels}: {len(labels)} labels for {len(samples)} samples")
    run = run_program(compiled.program, {ir.node(n)["value"]: x[n] for n in ir.inputs})
    cycles = {ls.name: ls.cycles for ls in run.layers}
    sim_out = {o: run.outputs[ir.node(o)["value"]].reshape(len(samples), *ir.node(o)["shape"][1:])
               for o in ir.outputs}
    result = analyze(ir, hw, x, labels, cycles, sim_out)
    print(f"{args.model}: {len(samples)} samples; scale rule {hw.scale_rule}, {hw.weight_granularity} "
          f"weights, {hw.act_mode} activations, rounding {hw.rounding}, calibration {args.calib_method}; "
          f"{run.stats[0].cycles} cycles per sample")
    print(format_analysis(result))
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from ..tools.sweep import SweepRequest, run_sweep
    from .options import parse_input_shapes

    req = SweepRequest(args.model, args.grid, args.output, calib=args.calib, data=args.data, labels=args.labels,
                       hw=args.hw, input_shapes=parse_input_shapes(args.input_shape),
                       allow_fallback=not args.no_fallback, executor=args.executor, jobs=args.jobs,
                       scheduler=args.scheduler, retry_failed=args.retry_failed, progress=True)
    result = run_sweep(req)
    print(result.summary, end="")
    print(f"wrote {Path(args.output) / 'results.csv'}: {len(result.rows)} points, {result.computed} computed now "
          f"({result.compiled} compiled), the rest from earlier runs"
          + (f"; plot {result.plot}" if result.plot else "; no plot (pip install 'npuc[plot]')"))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ..tools.demo import run_demo

    return run_demo(hw_spec=args.hw, show_layers=args.stats)


def cmd_hw(args: argparse.Namespace) -> int:
    from ..hw import load_hw, presets

    if args.list:
        print("\n".join(presets()))
        return 0
    print(load_hw(args.preset).to_toml(), end="")
    return 0


__all__ = ["bind_inputs", "cmd_analyze", "cmd_compile", "cmd_demo", "cmd_export_qdq", "cmd_hw", "cmd_run",
           "cmd_sim", "cmd_sweep", "hw_from_args", "load_inputs"]
