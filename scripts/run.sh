#!/bin/sh
# Runs umcallrouter and umservice in the foreground on one state directory.
# Ctrl-C (or SIGTERM) stops both; the exit status is 0 when both stopped
# cleanly.   usage: scripts/run.sh BUILD_DIR STATE_DIR
set -u
build=${1:-build}
state=${2:-var}
level=${LOG_LEVEL:-info}

mkdir -p "$state"
# The router first: it owns the IPC socket and, on a first run, creates the
# directory (and prints the mailbox PIN once).
"$build/umcallrouter" --state-dir "$state" --log-level "$level" &
router=$!
i=0
while [ ! -S "$state/run/umcallrouter.sock" ] && [ $i -lt 50 ]; do
  if ! kill -0 $router 2>/dev/null; then
    wait $router
    exit $?
  fi
  sleep 0.1; i=$((i + 1))
done
"$build/umservice" --state-dir "$state" --log-level "$level" &
service=$!

stop() {
  kill -TERM $service $router 2>/dev/null
}
trap stop INT TERM

echo "OpenUM running: state in $state; try '$build/umctl --state-dir $state status'. Ctrl-C stops." >&2
# Wait for both; if one dies, stop the other.
rc=0
while kill -0 $router 2>/dev/null && kill -0 $service 2>/dev/null; do
  wait 2>/dev/null || true
done
stop
wait $service; rs=$?
wait $router; rr=$?
[ $rs -eq 0 ] || rc=$rs
[ $rr -eq 0 ] || rc=$rr
exit $rc
