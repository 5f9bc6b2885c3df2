"""IR -> NPU instructions: tiling, code generation and dependency tokens."""

from ..hw import HwConfig
from ..ir import IR
from .codegen import generate
from .conv import ConvGeom
from .deps import check_tracking_memory as check_backend_resources
from .emit import BackendError
from .pool import maxpool_window_fits


def too_big(ir: IR, hw: HwConfig) -> dict[str, str]:
    """Nodes the NPU cannot run under `hw` whatever the tiling (a MaxPool window larger than the
    scratchpad), each with the reason: the compiler runs them on the host."""
    out = {}
    for name in ir.topo():
        if ir.op(name) != "MaxPool":
            continue
        a = ir.node(name)["attrs"]
        (kh, kw), (sh, sw), (dh, dw) = a["kernel"], a["strides"], a.get("dilations", (1, 1))
        g = ConvGeom(cin=1, h=1, w=1, cout=1, oh=1, ow=1, kh=kh, kw=kw, sh=sh, sw=sw, dh=dh, dw=dw)
        if not maxpool_window_fits(g, hw.spad_bytes):
            out[name] = f"a {kh}x{kw} window does not fit the {hw.spad_bytes // 1024} KiB scratchpad"
    return out


__all__ = ["BackendError", "check_backend_resources", "generate", "too_big"]
