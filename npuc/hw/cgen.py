"""The C view of the hardware declarations: the `npu_hw` struct of `csrc/npu_types.h`.

`python -m npuc.isa.gen_header` writes that header; this module renders its
hardware part from the fields declared with `ToC` in `npuc/hw/__init__.py`:
the struct (each member's accepted range in its comment), the X-macro
`NPU_HW_FIELDS(X)` from which `csrc/sim.c` builds its range checks, and the
index constants of choice fields. It lives here, not in `isa/`, because
`isa/` knows only the ISA and the hardware fields are the compiler's
(`gen_header` imports this module only when it runs).
"""

from __future__ import annotations

from .fields import Choice, CMember


def _pretty(v: int) -> str:
    """A range bound for a comment: 2^k for large powers of two, as ISA.md writes them."""
    if v >= 4096 and v & (v - 1) == 0:
        return f"2^{v.bit_length() - 1}"
    return str(v)


def _c_int(v: int) -> str:
    """An int32 literal: INT32_MIN has none of its own (2147483648 is not an int)."""
    return "(-2147483647 - 1)" if v == -(2**31) else str(v)


def hw_lines(members: tuple[CMember, ...]) -> list[str]:
    """The hardware part of npu_types.h: choice constants, `npu_hw`, `NPU_HW_FIELDS(X)`."""
    out: list[str] = []
    for m in members:
        if isinstance(m.field.kind, Choice):
            out += [f"#define NPU_HW_{m.member.upper()}_{v.upper()} {i}" for i, v in enumerate(m.field.kind.values)]
    if out:
        out.append("")
    out += [
        "/* Hardware parameters (npuc.hw.HwConfig; sizes already in bytes / words).",
        " * Each member: [the range npu_run accepts] section.field of the TOML config: doc. */",
        "typedef struct {",
    ]
    decl_width = max(len(f"int32_t {m.member};") for m in members)
    for m in members:
        decl = f"int32_t {m.member};"
        out.append(f"    {decl:<{decl_width}}  /* [{_pretty(m.lo)}, {_pretty(m.hi)}] {m.field.key}: {m.doc} */")
    out += ["} npu_hw;", ""]
    out += ["/* X(member, lo, hi) for every npu_hw member: the ranges npu_run checks. */",
            "#define NPU_HW_FIELDS(X) \\"]
    out += [f"    X({m.member}, {_c_int(m.lo)}, {_c_int(m.hi)}) \\" for m in members]
    out[-1] = out[-1].removesuffix(" \\")
    return out
