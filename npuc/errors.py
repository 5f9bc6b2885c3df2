"""Which exceptions mean bad input (a one-line error, exit 1) and how a message becomes one line.

Shared by the command line and the tools that record errors (a sweep's failed points); the error
types are imported when asked for, so importing this module loads nothing else of npuc."""

from __future__ import annotations


def user_error_types() -> tuple[type[BaseException], ...]:
    """Exception types that mean bad input, not a bug in npuc."""
    from .backend import BackendError
    from .frontend import FrontendError
    from .host import HostError
    from .hw import HwConfigError
    from .ir import IRError
    from .isa.asm import AsmError
    from .limits import ResourceError
    from .passes import PassError
    from .quant.calib_data import CalibrationError
    from .sim.core import SimError
    from .sim.driver import InputError
    from .tools.sweep import ExecutorError, GridError

    return (PassError, BackendError, CalibrationError, FrontendError, HwConfigError, IRError, AsmError, SimError,
            InputError, ResourceError, HostError, OSError, GridError, ExecutorError)


def one_line(e: BaseException) -> str:
    """An error message as one line (some library messages span several)."""
    return "; ".join(line.strip() for line in str(e).strip().splitlines() if line.strip()) or type(e).__name__
