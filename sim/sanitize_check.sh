#!/usr/bin/env bash
# Build the C simulator core with AddressSanitizer + UndefinedBehaviorSanitizer
# into a fresh venv and run the simulator tests on it.
#
#   bash sim/sanitize_check.sh VENV_DIR [PYTEST ARGS...]
#
# The project is installed (not editable) from a clean copy of the working
# tree, so no stale object from an ordinary build in ./build can be reused and
# nothing is written into the tree. Python itself is not instrumented, so the
# ASan and UBSan runtimes are preloaded; leak detection is off because the
# interpreter keeps its allocations until exit.
set -euo pipefail

venv=$(realpath -m "${1:?usage: bash sim/sanitize_check.sh VENV_DIR [PYTEST ARGS...]}")
repo=$(cd "$(dirname "$0")/.." && pwd)
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT

# tracked files and untracked ones that are not ignored: the tree as a fresh clone would have it
if git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git -C "$repo" ls-files -z --cached --others --exclude-standard \
        | tar -C "$repo" --null --ignore-failed-read -T - -cf - | tar -xf - -C "$src"
else  # an unpacked sdist: everything but build output
    tar -C "$repo" --exclude=./build --exclude='*.egg-info' --exclude='*.so' --exclude='./.*' -cf - . \
        | tar -xf - -C "$src"
fi

if [ -e "$venv" ] && [ ! -f "$venv/pyvenv.cfg" ] && [ -n "$(ls -A "$venv")" ]; then
    echo "sanitize_check: $venv exists and is not a venv; refusing to clear it" >&2
    exit 2
fi
python3 -m venv --clear "$venv"  # always a fresh build, never a reused install
"$venv/bin/python" -m pip install -q --upgrade pip
NPUC_SANITIZE=1 "$venv/bin/python" -m pip install -q --no-cache-dir "$src" pytest hypothesis

asan=$(gcc -print-file-name=libasan.so)
ubsan=$(gcc -print-file-name=libubsan.so)
cd "$repo"
# The pytest script, not `python -m pytest`, which would put the source tree's npuc/ first on
# sys.path. No faulthandler and no fd capture, so that a sanitizer report reaches the terminal.
LD_PRELOAD="$asan:$ubsan" \
ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$venv/bin/pytest" -p no:cacheprovider -p no:faulthandler --capture=sys tests/sim "${@:2}"
