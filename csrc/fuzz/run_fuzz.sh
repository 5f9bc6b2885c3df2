#!/usr/bin/env bash
# Build the libFuzzer harness of the C simulator core under AddressSanitizer and
# UndefinedBehaviorSanitizer, and fuzz it starting from the committed seed corpus.
#
#   bash csrc/fuzz/run_fuzz.sh            # 60 seconds
#   bash csrc/fuzz/run_fuzz.sh 300s       # a time budget
#   bash csrc/fuzz/run_fuzz.sh 200000     # a number of executions (with a 15-minute safety cap)
#   bash csrc/fuzz/run_fuzz.sh 60s -jobs=2 -workers=2   # extra flags go to libFuzzer
#
# Needs clang with libFuzzer (Debian: apt-get install clang libclang-rt-14-dev).
# Exits non-zero on any crash, sanitizer report, leak, timeout or broken error contract
# (the crashing input is kept in $FUZZ_OUT and printed as a reproducer command), and when
# fewer than FUZZ_MIN_EXECS inputs ran (default 0). The committed corpus is only read:
# new inputs go to a scratch corpus in $FUZZ_OUT (default: a temporary directory).
# The last line is machine-readable: "fuzz_sim: N executions, 0 crashes".
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
csrc=$(cd "$here/.." && pwd)
budget=${1:-60s}
shift || true

case "$budget" in
    *s) limit=(-max_total_time="${budget%s}") ;;
    *[!0-9]* | "") echo "run_fuzz: budget '$budget': expected SECONDSs (60s) or a run count" >&2; exit 2 ;;
    *) limit=(-runs="$budget" -max_total_time=900) ;;
esac

cc=${CC_FUZZ:-clang}
if ! command -v "$cc" >/dev/null; then
    echo "run_fuzz: $cc not found; install clang and libFuzzer (apt-get install clang libclang-rt-14-dev)" >&2
    exit 2
fi

out=${FUZZ_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/npuc-fuzz.XXXXXX")}
mkdir -p "$out/new"
bin="$out/fuzz_sim"
flags=(-std=c99 -g -O1 -fno-omit-frame-pointer -Wall -Wextra -Werror
       -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I"$csrc")
"$cc" "${flags[@]}" "$csrc"/*.c "$here/fuzz_sim.c" -o "$bin"

log="$out/fuzz.log"
set +e
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$bin" "${limit[@]}" -max_len=8192 -timeout=20 -rss_limit_mb=2560 -malloc_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$out/" "$@" "$out/new" "$here/corpus" >"$log" 2>&1
rc=$?
set -e

grep -E '^(INFO: seed corpus|#[0-9]+ +(INITED|DONE))' "$log" || true
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
crashes=$(find "$out" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
          -o -name 'oom-*' -o -name 'slow-unit-*' \) | sort)
if [ "$rc" -ne 0 ] || [ -n "$crashes" ] || [ -z "$execs" ]; then
    tail -60 "$log" >&2
    echo "run_fuzz: FAILED (libFuzzer exit $rc); log: $log" >&2
    for c in $crashes; do
        echo "run_fuzz: reproduce with: FUZZ_SIM_VERBOSE=1 $bin $c" >&2
    done
    echo "fuzz_sim: ${execs:-?} executions, $(echo "$crashes" | grep -c . ) crashes"
    exit 1
fi
if [ "$execs" -lt "${FUZZ_MIN_EXECS:-0}" ]; then
    echo "run_fuzz: only $execs executions, fewer than FUZZ_MIN_EXECS=$FUZZ_MIN_EXECS" >&2
    exit 1
fi
echo "fuzz_sim: corpus $(ls "$here/corpus" | wc -l) seeds + $(ls "$out/new" | wc -l) inputs found"
if [ -z "${FUZZ_OUT:-}" ]; then
    rm -rf "$out"  # a scratch directory of ours; nothing to keep from a clean run
else
    echo "fuzz_sim: log, binary and new inputs in $out"
fi
echo "fuzz_sim: $execs executions, 0 crashes"
