"""npuc: an int8 NPU compiler backend and cycle-accurate simulator (see README.md)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("npuc")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"
