"""ONNX -> IR. `load_onnx` is the entry point; one handler per ONNX op lives in the op modules.

Importing the op modules registers their handlers in `HANDLERS`.
"""

from . import activation, conv, dense, elementwise, layout, reduce, tensor  # noqa: F401  (registers the handlers)
from .loader import OPSET_MAX, OPSET_MIN, load_onnx
from .registry import HANDLERS, FrontendError, handler

__all__ = ["HANDLERS", "OPSET_MAX", "OPSET_MIN", "FrontendError", "handler", "load_onnx"]
