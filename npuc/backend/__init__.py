"""IR -> NPU instructions: tiling, code generation and dependency tokens."""

from .codegen import generate
from .emit import BackendError

__all__ = ["generate", "BackendError"]
