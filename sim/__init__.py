"""The simulator: `npuc.sim.load(path)` gives a `Simulator` that runs a program on many inputs
in process (`sim/api.py`). Loaded on first use, so importing `npuc.sim.x` stays as lean as x."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .api import Simulator, load

__all__ = ["Simulator", "load"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
