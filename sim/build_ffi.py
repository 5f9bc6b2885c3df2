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
    comments, the include guard and #includes dropped, integer #defines kept."""
    with open(path) as f:
        text = re.sub(r"/\*.*?\*/", "", f.read(), flags=re.S)
    keep = [ln for ln in text.splitlines()
            if not ln.lstrip().startswith("#") or re.fullmatch(r"#define \w+ \d+", ln.strip())]
    return "\n".join(keep)


CDEF = cdef_from_header(os.path.join(CSRC, "npusim.h"))

if os.environ.get("NPUC_SANITIZE") == "1":
    _SAN = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined"]
    # -fno-wrapv undoes the -fwrapv of Python's own CFLAGS, which would define signed
    # overflow and so hide it from UBSan
    COMPILE_ARGS = ["-std=c99", "-O1", "-g", "-fno-omit-frame-pointer", "-fno-wrapv", "-Wall", "-Wextra",
                    *_SAN]
    LINK_ARGS = _SAN
else:
    COMPILE_ARGS = ["-std=c99", "-O3", "-march=native", "-Wall", "-Wextra"]
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
