"""The libFuzzer harness and its committed seed corpus, without clang: gcc + ASan + UBSan.

Builds csrc/ with csrc/fuzz/fuzz_sim.c and the plain replay driver
csrc/fuzz/replay.c, and runs every seed: no sanitizer report and none of the
harness's error-contract checks may fire. This keeps the harness compiling
and the corpus a regression suite; csrc/fuzz/run_fuzz.sh is the real,
coverage-guided fuzzer (clang + libFuzzer), run by CI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CSRC = ROOT / "csrc"
CORPUS = CSRC / "fuzz" / "corpus"

pytestmark = pytest.mark.skipif(not (CSRC / "fuzz" / "fuzz_sim.c").exists() or shutil.which("gcc") is None,
                                reason="needs the source tree's csrc/ and gcc")


def test_corpus_is_small():
    files = list(CORPUS.iterdir())
    assert 20 <= len(files) and sum(f.stat().st_size for f in files) < 1 << 20


def test_seed_corpus_replays_clean_under_sanitizers(tmp_path):
    exe = tmp_path / "replay"
    sources = sorted(str(p) for p in CSRC.glob("*.c")) + [str(CSRC / "fuzz" / "fuzz_sim.c"),
                                                         str(CSRC / "fuzz" / "replay.c")]
    subprocess.run(["gcc", "-std=c99", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-fno-omit-frame-pointer",
                    "-fsanitize=address,undefined", "-fno-sanitize-recover=all", f"-I{CSRC}", *sources,
                    "-o", str(exe)], check=True, capture_output=True, text=True)
    env = {**os.environ, "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1", "UBSAN_OPTIONS": "halt_on_error=1"}
    r = subprocess.run([str(exe), *sorted(str(p) for p in CORPUS.iterdir())], capture_output=True, text=True,
                       env=env, timeout=300, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stderr == "" and f"{len(list(CORPUS.iterdir()))} inputs, no crash" in r.stdout


def test_damaged_seeds_are_current():
    """csrc/fuzz/make_damaged_seeds.py's seeds (damaged copies of a compiled program) are committed as made."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_damaged_seeds", CSRC / "fuzz" / "make_damaged_seeds.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    seeds = mod.damaged((CORPUS / mod.BASE).read_bytes())
    assert len(seeds) >= 10
    for name, blob in seeds.items():
        assert (CORPUS / name).read_bytes() == blob, f"{name} is stale: python csrc/fuzz/make_damaged_seeds.py"
