"""cffi (out-of-line API mode) build of the C simulator core as `npuc.sim._npusim`.

`pip install .` runs this through setup.py's `cffi_modules`; setuptools runs it
from the repository root, so the paths below are relative to it. Set
NPUC_SANITIZE=1 at build time for an AddressSanitizer + UBSan build
(see sim/sanitize_check.sh).
"""

import os
import re
from glob import glob

from cffi import FFI

CSRC = "csrc"


def cdef_from_header(path: str) -> str:
    """The declarations cffi needs, read from the public header itself (written once):
    comments, the include guard, macros with arguments and system #includes dropped, integer
    #defines kept, and a local `#include "x.h"` replaced by x.h's own declarations (the
    generated npu_types.h holds npu_hw and npu_stats)."""
    with open(path) as f:
        text = re.sub(r"/\*.*?\*/", "", f.read(), flags=re.S)
    text = text.replace("\\\n", " ")  # a multi-line macro is one directive
    keep = []
    for ln in text.splitlines():
        directive = ln.strip()
        local = re.fullmatch(r'#\s*include\s+"([^"]+)"', directive)
        if local:
            keep.append(cdef_from_header(os.path.join(os.path.dirname(path), local.group(1))))
        elif not directive.startswith("#") or re.fullmatch(r"#define \w+ \d+", directive):
            keep.append(ln)
    return "\n".join(keep)


CDEF = cdef_from_header(os.path.join(CSRC, "npusim.h"))

# -march=native lets the compiler vectorize the kernels (csrc/kernels.c) for this CPU, AVX2's
# 16-bit multiply-add included; NPUC_MARCH=<arch> picks another target, NPUC_MARCH= (empty) none,
# for a compiler that has no -march=native or a build meant for other machines
_ARCH = os.environ.get("NPUC_MARCH", "native")
MARCH = [f"-march={_ARCH}"] if _ARCH else []

if os.environ.get("NPUC_SANITIZE") == "1":
    _SAN = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined"]
    # -fno-wrapv undoes the -fwrapv of Python's own CFLAGS, which would define signed
    # overflow and so hide it from UBSan
    COMPILE_ARGS = ["-std=c99", "-O1", "-g", "-fno-omit-frame-pointer", "-fno-wrapv", "-Wall", "-Wextra",
                    *MARCH, *_SAN]  # the same kernels as the optimized build (the AVX2 ones too)
    LINK_ARGS = _SAN
else:
    COMPILE_ARGS = ["-std=c99", "-O3", *MARCH, "-Wall", "-Wextra"]
    LINK_ARGS = []

SOURCES = sorted(glob(os.path.join(CSRC, "*.c")))
if not SOURCES:
    raise RuntimeError(f"no C sources in {os.path.abspath(CSRC)}: build from the repository root")

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "npuc.sim._npusim",
    '#include "npusim.h"',
    sources=SOURCES,
    depends=sorted(glob(os.path.join(CSRC, "*.h"))),
    include_dirs=[CSRC],
    extra_compile_args=COMPILE_ARGS,
    extra_link_args=LINK_ARGS,
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
