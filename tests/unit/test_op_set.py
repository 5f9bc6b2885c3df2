"""The op set (`npuc.ops.OPS`) is the one declaration of the IR's ops: every op has each piece it
needs, and no registry knows an op the declaration does not.

Adding an op to `OPS` without its float reference, integer reference, quantizer, lowering or
either export fails here, naming the op and the missing piece."""

from __future__ import annotations

import dataclasses

import pytest

import npuc.backend  # noqa: F401  (registers the lowerings)
from npuc.backend.context import LOWERINGS
from npuc.export.integer import _Integer
from npuc.export.qdq import _Qdq
from npuc.frontend import HANDLERS
from npuc.ir import QParams
from npuc.ops import OPS, Kind
from npuc.passes.quantize import QUANTIZERS
from npuc.reference import FLOAT_OPS, QUANT_OPS


def _pieces(op: str) -> dict[str, bool]:
    d = OPS[op]
    have = {"float reference (npuc.reference FLOAT_OPS)": op in FLOAT_OPS or d.kind is Kind.INPUT}
    if d.quantized:
        have.update({
            "integer reference (npuc.reference QUANT_OPS)": op in QUANT_OPS or d.kind is Kind.INPUT,
            "quantizer (npuc.passes.quantize QUANTIZERS)": op in QUANTIZERS,
            # graph inputs are placed by `generate` itself, before any lowering
            "lowering (npuc.backend LOWERINGS)": op in LOWERINGS or d.kind is Kind.INPUT,
            "QDQ export (npuc.export.qdq._Qdq)": callable(getattr(_Qdq, op, None)),
            "integer export (npuc.export.integer._Integer)": callable(getattr(_Integer, op, None)),
        })
    return have


@pytest.mark.parametrize("op", sorted(OPS))
def test_every_declared_op_has_every_piece(op):
    missing = [piece for piece, ok in _pieces(op).items() if not ok]
    assert not missing, f"op {op} ({OPS[op].kind.value}) has no {', '.join(missing)}"


@pytest.mark.parametrize("registry,name", [(FLOAT_OPS, "FLOAT_OPS"), (QUANT_OPS, "QUANT_OPS"),
                                           (QUANTIZERS, "QUANTIZERS"), (LOWERINGS, "LOWERINGS")])
def test_no_registry_knows_an_undeclared_op(registry, name):
    assert set(registry) <= set(OPS), f"{name} has ops not in npuc.ops.OPS: {sorted(set(registry) - set(OPS))}"


def test_float_only_ops_have_no_integer_pieces():
    """An op `prepare` folds away must not grow a quantizer or a lowering: it would hide a missed fold."""
    for op, d in OPS.items():
        if d.kind is Kind.FLOAT:
            assert op not in QUANTIZERS and op not in LOWERINGS and op not in QUANT_OPS, op


def test_quantized_records_are_frozen_and_declared():
    for d in OPS.values():
        if d.qparams is None:
            continue
        assert issubclass(d.qparams, QParams) and dataclasses.is_dataclass(d.qparams)
        assert d.qparams.__dataclass_params__.frozen, d.qparams.__name__


def test_frontend_handlers_emit_only_declared_ops():
    """Every IR op a frontend handler may create is declared (handlers name ONNX ops; the IR ops they
    emit are checked by `verify` at the frontend stage on every test model: here, the declared names
    include every op the reference knows)."""
    assert HANDLERS  # the registry exists and is populated
    assert set(FLOAT_OPS) | {"Input"} == set(OPS)
