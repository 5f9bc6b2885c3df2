"""All nine ONNX zoo CNNs through the whole flow (tests/e2e/test_zoo.py with its three largest
models, which `pytest` leaves out to keep CI within its budget), with each model's times, cycles
and SQNR printed.

    python bench/zoo.py            # about 5 minutes on 2 cores
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    env = {**os.environ, "NPUC_FULL_ZOO": "1"}
    cmd = [sys.executable, "-m", "pytest", "-s", "tests/e2e/test_zoo.py", *sys.argv[1:]]
    sys.exit(subprocess.call(cmd, cwd=ROOT, env=env))
