#!/bin/bash
# The README's test command behind `make test`: the C unit tests, then the
# process tests (pytest) against the real daemons and real SIP peers. Prints
# each runner's output and one summary line at the end: "N passed, N failed".
#   usage: scripts/test.sh BUILD_DIR PYTHON
set -u
build=${1:-build}
python=${2:-/usr/bin/python3}
log=$(mktemp -d /tmp/openum-test-XXXXXX)
trap 'rm -rf "$log"' EXIT

"$build/unit-tests" | tee "$log/unit.txt"
unit_rc=${PIPESTATUS[0]}

OPENUM_BUILD="$build" "$python" -m pytest -q -p no:cacheprovider tests/e2e \
  2>&1 | tee "$log/e2e.txt"
e2e_rc=${PIPESTATUS[0]}

up=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$log/unit.txt" | tail -1)
uf=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$log/unit.txt" | tail -1)
last=$(grep -E '[0-9]+ (passed|failed|error)' "$log/e2e.txt" | tail -1)
count() { echo "$last" | grep -oE "[0-9]+ $1" | head -1 | grep -oE '^[0-9]+'; }
ep=$(count passed)
ef=$(count failed)
ee=$(count error)
passed=$(( ${up:-0} + ${ep:-0} ))
failed=$(( ${uf:-0} + ${ef:-0} + ${ee:-0} ))
# A runner that crashed before its summary still fails the run.
if [ -z "$up" ] || [ -z "$last" ]; then failed=$((failed + 1)); fi
if [ $unit_rc -ne 0 ] && [ "${uf:-0}" -eq 0 ]; then failed=$((failed + 1)); fi
if [ $e2e_rc -ne 0 ] && [ "${ef:-0}" -eq 0 ] && [ "${ee:-0}" -eq 0 ]; then failed=$((failed + 1)); fi

echo "unit: ${up:-?} passed, ${uf:-?} failed; e2e: ${last:-no summary}"
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
