"""The error a pass raises when the model needs something it does not support yet."""

from __future__ import annotations


class PassError(ValueError):
    """A pass cannot handle the graph; the one-line message names the node and op."""
