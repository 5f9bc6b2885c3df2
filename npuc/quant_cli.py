"""The quantization subcommands: `npuc export-qdq` and `npuc analyze`.

Registered into `npuc.cli`'s parser by `add_quant_commands`, so cli.py only
gains one call; both take the same compile options as `npuc compile`.
"""

from __future__ import annotations

import argparse
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def add_quant_commands(sub: Any, add_compile_options: Callable[[argparse.ArgumentParser], None],
                       hw_from_args: Callable[[argparse.Namespace], Any],
                       parse_input_shapes: Callable[[list[str]], dict[str, tuple[int, ...]]]) -> None:
    p = sub.add_parser("export-qdq", help="write the quantized model as an ONNX QDQ model (ORT oracle)")
    add_compile_options(p)
    p.add_argument("-o", "--output", default=None, help="ONNX file to write (default: MODEL_qdq.onnx)")
    p.add_argument("--form", choices=("auto", "qdq", "integer"), default="auto",
                   help="qdq (QuantizeLinear/DequantizeLinear) or integer (ConvInteger + int64 requantization); "
                        "auto: qdq for half_even rounding, integer otherwise")
    p.add_argument("--int8-outputs", action="store_true", help="graph outputs are the int8 tensors")
    p.set_defaults(func=lambda a: export_qdq_command(a, hw_from_args(a), parse_input_shapes(a.input_shape)))

    p = sub.add_parser("analyze", help="per-layer quantization error against fp32, by cause, with cycles")
    add_compile_options(p)
    p.add_argument("--data", default=None, help="inputs to analyze on, .npy batch first (default: the calib data)")
    p.add_argument("--labels", default=None, help="integer labels .npy for accuracy")
    p.add_argument("--max-samples", type=int, default=256, help="analyze at most this many samples")
    p.set_defaults(func=lambda a: analyze_command(a, hw_from_args(a), parse_input_shapes(a.input_shape)))


def _compile(args: argparse.Namespace, hw: Any, shapes: dict[str, tuple[int, ...]]) -> Any:
    from .cli import calib_kwargs
    from .compiler import compile_model

    return compile_model(args.model, hw, calib=args.calib, method=args.calib_method, input_shapes=shapes,
                         **calib_kwargs(args))


def export_qdq_command(args: argparse.Namespace, hw: Any, shapes: dict[str, tuple[int, ...]]) -> int:
    import onnx

    from .export_qdq import default_form, export_qdq
    from .fsutil import atomic_write_bytes

    compiled = _compile(args, hw, shapes)
    form = default_form(hw.rounding) if args.form == "auto" else args.form
    model = export_qdq(compiled.ir, form, int8_outputs=args.int8_outputs)
    out = Path(args.output or Path(args.model).stem + "_qdq.onnx")
    buf = io.BytesIO()
    onnx.save(model, buf)
    atomic_write_bytes(out, buf.getvalue())
    print(f"wrote {out}: {form} form, {len(model.graph.node)} nodes, scale rule {hw.scale_rule}, "
          f"rounding {hw.rounding}; calibrated on {compiled.calib_samples} samples from {compiled.calib_source}")
    return 0


def _load_array(path: str, what: str) -> np.ndarray:
    from .calib import CalibrationError

    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise CalibrationError(f"{path}: cannot read {what} as .npy: {e}") from None


def analyze_command(args: argparse.Namespace, hw: Any, shapes: dict[str, tuple[int, ...]]) -> int:
    from .analyze import analyze, format_analysis
    from .calib import CalibrationError, load_calibration
    from .sim.driver import run_program

    compiled = _compile(args, hw, shapes)
    ir = compiled.ir
    if args.data is not None:
        samples = load_calibration(args.data, compiled.float_ir)
    elif args.calib is not None:
        samples = load_calibration(args.calib, compiled.float_ir)
    else:
        raise CalibrationError("analyze needs data: give --data X.npy (or --calib)")
    samples = samples[:args.max_samples]
    x = {n: np.stack([s[n] for s in samples]) for n in ir.inputs}
    labels = None
    if args.labels is not None:
        labels = _load_array(args.labels, "labels").astype(np.int64).ravel()[:len(samples)]
        if len(labels) != len(samples):
            raise CalibrationError(f"{args.labels}: {len(labels)} labels for {len(samples)} samples")
    prog = compiled.program
    run = run_program(prog, {ir.node(n)["value"]: x[n] for n in ir.inputs})
    cycles = {ls.name: ls.cycles for ls in run.layers}
    sim_out = {o: run.outputs[ir.node(o)["value"]].reshape(len(samples), *ir.node(o)["shape"][1:])
               for o in ir.outputs}
    result = analyze(ir, hw, x, labels, cycles, sim_out)
    print(f"{args.model}: {len(samples)} samples; scale rule {hw.scale_rule}, {hw.weight_granularity} "
          f"weights, {hw.act_mode} activations, rounding {hw.rounding}, calibration {args.calib_method}; "
          f"{run.stats[0].cycles} cycles per sample")
    print(format_analysis(result))
    return 0
