"""IR -> NPU instructions: tiling, code generation and dependency tokens."""

from .codegen import generate
from .deps import check_tracking_memory as check_backend_resources
from .emit import BackendError

__all__ = ["BackendError", "check_backend_resources", "generate"]
