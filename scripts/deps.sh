#!/bin/sh
# Install the Debian packages OpenUM needs, and only those that are missing.
#
#   scripts/deps.sh          build + run dependencies
#   scripts/deps.sh test     ... plus the test peers (SIPp, baresip, dnsmasq, pytest)
#   scripts/deps.sh bench    ... plus what the benchmarks compare against (Kamailio)
#
# It is idempotent and non-interactive: it says what it installs, runs
# `apt-get update` only when something is missing, and does nothing otherwise.
set -eu

build="pkg-config gcc make libsofia-sip-ua-dev libuv1-dev libsrtp2-dev libsqlite3-dev
libssl-dev libespeak-ng-dev espeak-ng-data libpocketsphinx-dev pocketsphinx-en-us
libspeexdsp-dev libprotobuf-c-dev protobuf-c-compiler libc-ares-dev"
test="sip-tester baresip-core dnsmasq-base python3-pytest iproute2 sqlite3 clang"
bench="kamailio"

want="$build"
case "${1:-}" in
  test)  want="$build $test" ;;
  bench) want="$build $test $bench" ;;
  "")    ;;
  *) echo "usage: $0 [test|bench]" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done

if [ -z "$missing" ]; then
  exit 0
fi

echo "deps: installing missing Debian packages:$missing" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >&2
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >&2
echo "deps: done" >&2
