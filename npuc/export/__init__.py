"""The quantized IR as ONNX: the independent oracle ONNX Runtime runs.

`export_qdq` writes either form: `qdq` (QuantizeLinear/DequantizeLinear around
float ops, what ORT fuses into QLinear kernels) or `integer` (ConvInteger /
MatMulInteger plus the requantizer spelled in integer ops, exact for any
rounding). `ort_session` opens an exported model the way the oracle must run it.
"""

from .qdq import FORMS, ORACLE_NOTES, default_form, export_qdq, ort_session

__all__ = ["FORMS", "ORACLE_NOTES", "default_form", "export_qdq", "ort_session"]
