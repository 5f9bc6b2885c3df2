"""The command line's option groups, and the one place their values become objects.

Every command of the compile family (`compile`, `run`, `export-qdq`, `analyze`)
takes the same options; `compile_request(args)` turns them into the hardware
config, the `CompileOptions` and the mixed-precision request, once.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..hw import HwConfig, field_choices, load_hw


@dataclass(frozen=True)
class EvalData:
    """`--data` / `--labels`: samples to measure on (a budget, an analysis), batch first."""

    x: np.ndarray | None = None
    labels: np.ndarray | None = None


@dataclass(frozen=True)
class CompileRequest:
    """What a compile-family command was asked for, built once from its arguments."""

    model: str
    hw: HwConfig
    options: Any  # npuc.compiler.CompileOptions (imported lazily: `npuc sim` never loads the compiler)
    budget: Any  # npuc.tools.mixed_precision.Budget, or None when no budget was asked for
    data: EvalData
    widths: tuple[str, ...] = ("int8",)  # the weight widths a budget's plan may choose on the NPU

    @property
    def mixed(self) -> bool:
        """Mixed precision was asked for by a budget (a search), not only by --float-layers."""
        return self.budget is not None


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


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


def add_compile_options(p: argparse.ArgumentParser) -> None:
    """The options every compile-family command takes."""
    from ..quant import CALIBRATORS
    from ..quant.rules import RULE_PRESETS

    p.add_argument("model", help="ONNX model file")
    p.add_argument("--hw", default=None, help="hardware preset name or TOML file (default: default)")
    g = p.add_argument_group("calibration")
    g.add_argument("--calib", default=None,
                   help="calibration data: .npy (samples on axis 0), .npz keyed by input, or a directory of .npy "
                        "(default: 32 random samples)")
    g.add_argument("--calib-method", default="minmax", choices=tuple(CALIBRATORS),
                   help="how a tensor's range is chosen from the samples (default: minmax)")
    g.add_argument("--calib-samples", type=positive_int, default=None, metavar="N",
                   help="use the first N calibration samples (default: all)")
    g.add_argument("--calib-batch", type=positive_int, default=16, metavar="B",
                   help="samples per batch of the calibration runs (default: 16)")
    g = p.add_argument_group("quantization rules (override the hardware config's [quant] section)")
    g.add_argument("--rules", choices=tuple(RULE_PRESETS), default=None,
                   help="a toolchain's rule preset (the flags below refine it)")
    g.add_argument("--per-tensor", action="store_true", help="per-tensor instead of per-channel weight scales")
    g.add_argument("--act-mode", choices=field_choices("act_mode"), default=None,
                   help="activations with a zero point (asymmetric) or without")
    g.add_argument("--rounding", choices=field_choices("rounding"), default=None,
                   help="rounding of the requantization shift")
    g.add_argument("--scale-rule", choices=field_choices("scale_rule"), default=None,
                   help="power-of-two scales (a shift), int32 fixed-point multipliers, or float")
    p.add_argument("--input-shape", action="append", default=[], metavar="NAME:D0,D1,..",
                   help="fix an input's dynamic dimensions")
    p.add_argument("--no-fallback", action="store_true",
                   help="an op the NPU cannot run is an error instead of running on the host")
    p.add_argument("--verify", action="store_true", help="verify IR invariants between passes")
    p.add_argument("--dump-ir", default=None, metavar="DIR", help="write the IR after each pass into DIR")
    g = p.add_argument_group("mixed precision (sensitive layers in host float) and error correction")
    g.add_argument("--float-layers", default=None, metavar="NAME,..",
                   help="run these Conv/Gemm layers in float on the host")
    g.add_argument("--int4-layers", default=None, metavar="NAME,..",
                   help="give these Conv/Gemm layers int4 weights on the array (gemm w4)")
    g.add_argument("--npu-widths", default="int8", metavar="W,..",
                   help="weight widths a --sqnr-target / --keep-accuracy plan may give layers on the NPU: int8 "
                        "(default; then host float), or int4,int8 (int4 where the budget allows, host float "
                        "only if all-int8 falls short)")
    g.add_argument("--sqnr-target", type=float, default=None, metavar="DB",
                   help="move the most sensitive layers to host float until the output SQNR vs fp32 reaches DB")
    g.add_argument("--keep-accuracy", type=float, default=None, metavar="PP",
                   help="... until at most PP percentage points of accuracy are lost (needs --data, --labels)")
    g.add_argument("--data", default=None, metavar="X.npy",
                   help="inputs to measure on, batch first (a budget; analyze: the samples analyzed; "
                        "default: the calibration samples)")
    g.add_argument("--labels", default=None, metavar="Y.npy", help="integer labels of --data (accuracy)")
    g.add_argument("--equalize", action="store_true",
                   help="cross-layer equalization of Conv/Gemm pairs before calibration")
    g.add_argument("--learn-rounding", action="store_true",
                   help="round each int8 weight up or down to minimise its layer's output error (AdaRound)")
    g.add_argument("--fold-act-scales", nargs="?", const="io", default="off", metavar="MODE",
                   choices=("io", "all", "pow2", "fill", "io+pow2"),
                   help="activation scales finer than a power of two, folded into Conv/Gemm weights (the "
                        "requantization stays a shift): io (default: the model's input and output get real "
                        "scales), pow2 (each channel its own exponent), io+pow2, fill, all (README, "
                        "'Closing the power-of-two gap')")
    g.add_argument("--bias-correction", action="store_true",
                   help="empirical bias correction on the calibration samples after quantization")


def hw_from_args(args: argparse.Namespace) -> HwConfig:
    """The hardware config of --hw, then the --rules preset, then the single rule flags."""
    hw = load_hw(args.hw)
    if getattr(args, "rules", None) is not None:
        from ..quant.rules import apply_rules

        hw = apply_rules(hw, args.rules)
    changes: dict[str, Any] = {}
    if getattr(args, "per_tensor", False):
        changes["weight_granularity"] = "per_tensor"
    for flag in ("act_mode", "rounding", "scale_rule"):
        if getattr(args, flag, None) is not None:
            changes[flag] = getattr(args, flag)
    return hw.replace(**changes) if changes else hw


def _load_npy(path: str, what: str) -> np.ndarray:
    from ..quant.calib_data import CalibrationError

    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise CalibrationError(f"{path}: cannot read {what} as .npy: {e}") from None


def eval_data_from_args(args: argparse.Namespace) -> EvalData:
    from ..quant.calib_data import CalibrationError

    x = None if args.data is None else _load_npy(args.data, "data")
    labels = None
    if args.labels is not None:
        labels = _load_npy(args.labels, "labels").astype(np.int64).ravel()
        if x is not None and len(labels) != len(x):
            raise CalibrationError(f"{args.labels}: {len(labels)} labels for {len(x)} samples in {args.data}")
    return EvalData(x, labels)


def compile_request(args: argparse.Namespace) -> CompileRequest:
    """Hardware config, compile options and mixed-precision budget from a compile-family command line."""
    from ..compiler import CompileOptions
    from ..quant.calib_data import CalibrationError
    from ..tools.mixed_precision import Budget

    layers = tuple(n.strip() for n in (args.float_layers or "").split(",") if n.strip())
    int4 = tuple(n.strip() for n in (args.int4_layers or "").split(",") if n.strip())
    widths = tuple(w.strip() for w in args.npu_widths.split(",") if w.strip())
    if not widths or any(w not in ("int4", "int8") for w in widths) or "int8" not in widths:
        raise argparse.ArgumentTypeError(f"--npu-widths {args.npu_widths!r}: int8, or int4,int8")
    budget = None
    if args.sqnr_target is not None or args.keep_accuracy is not None:
        budget = Budget(args.sqnr_target, args.keep_accuracy)
    if args.keep_accuracy is not None and (args.data is None or args.labels is None):
        raise CalibrationError("--keep-accuracy needs labelled data: give --data X.npy and --labels Y.npy")
    options = CompileOptions(
        calib=args.calib, calib_method=args.calib_method, calib_samples=args.calib_samples,
        calib_batch=args.calib_batch, input_shapes=parse_input_shapes(args.input_shape),
        allow_fallback=not args.no_fallback, float_layers=layers, int4_layers=int4, equalize=args.equalize,
        learn_rounding=args.learn_rounding, fold_act_scales=args.fold_act_scales,
        bias_correction=args.bias_correction, verify=args.verify,
        dump_ir=Path(args.dump_ir) if args.dump_ir else None, progress=True)
    return CompileRequest(args.model, hw_from_args(args), options, budget, eval_data_from_args(args), widths)


def compile_from_request(req: CompileRequest) -> Any:
    """Compile as asked: with a mixed-precision search when a budget was given (its plan is printed)."""
    from ..compiler import compile_model

    if not req.mixed:
        return compile_model(req.model, req.hw, req.options)
    if "int4" in req.widths:  # per-layer widths on the NPU first, host float as the last resort
        from ..tools.npu_precision import compile_npu_mixed

        compiled, wplan = compile_npu_mixed(req.model, req.hw, req.budget, req.options, data=req.data.x,
                                            labels=req.data.labels, widths=req.widths)
        print("\n".join(wplan.summary()))
        return compiled
    from ..tools.mixed_precision import compile_mixed

    compiled, plan = compile_mixed(req.model, req.hw, req.budget, req.options, data=req.data.x,
                                   labels=req.data.labels)
    print("\n".join(plan.summary()))
    return compiled
