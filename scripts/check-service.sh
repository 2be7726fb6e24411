#!/usr/bin/env bash
# Checks what 'make install' puts in place: the binary and both systemd
# units land where systemd looks, each unit's ExecStart names the installed
# binary, 'make uninstall' takes them away, and systemd-analyze verify finds
# nothing to say about either unit. Without systemd-analyze the verify step
# is skipped; under CI (CI=true or MYNETWORK_E2E=1, as .ci/run sets) a unit
# that fails it fails the check, elsewhere it is reported.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "check-service: $*" >&2; exit 1; }
strict=false
if [ "${MYNETWORK_E2E:-}" = 1 ] || [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; then strict=true; fi

# want FILE MODE: FILE exists with permission bits MODE.
want() {
  [ -f "$1" ] || fail "make install did not make $1"
  [ "$(stat -c %a "$1")" = "$2" ] || fail "$1 has mode $(stat -c %a "$1"), want $2"
}

# check_prefix PREFIX: install under DESTDIR with that prefix, look at every
# file, uninstall.
check_prefix() {
  local prefix=$1 dest="$work/dest${1//\//_}"
  make -s install DESTDIR="$dest" PREFIX="$prefix" >/dev/null
  want "$dest$prefix/bin/mynetwork" 755
  want "$dest$prefix/lib/systemd/system/mynetwork@.service" 644
  want "$dest$prefix/lib/systemd/user/mynetwork-userspace@.service" 644
  grep -qx "ExecStart=$prefix/bin/mynetwork up -i %i -c %S/mynetwork/%i.json" \
    "$dest$prefix/lib/systemd/system/mynetwork@.service" ||
    fail "mynetwork@.service installed with PREFIX=$prefix does not start $prefix/bin/mynetwork"
  grep -qx "ExecStart=$prefix/bin/mynetwork up --userspace -i %i -c %S/mynetwork/%i.json" \
    "$dest$prefix/lib/systemd/user/mynetwork-userspace@.service" ||
    fail "mynetwork-userspace@.service installed with PREFIX=$prefix does not start $prefix/bin/mynetwork"
  make -s uninstall DESTDIR="$dest" PREFIX="$prefix" >/dev/null
  local left
  left=$(find "$dest" -type f)
  [ -z "$left" ] || fail "make uninstall left: $left"
  echo "check-service: make install and uninstall with PREFIX=$prefix: ok"
}

# verify: systemd-analyze verify on an instance of each template, installed
# for real under a temporary prefix so that ExecStart names a binary that
# exists. It exits 0 on unknown keys and bad values, so any output fails.
verify() {
  if ! command -v systemd-analyze >/dev/null; then
    # CI installs it (.ci/run's systemd): there, a missing tool is a failure.
    $strict && fail "systemd-analyze not found: install systemd"
    echo "check-service: systemd-analyze not found; skipping verify"
    return 0
  fi
  local prefix="$work/verify" out
  make -s install PREFIX="$prefix" >/dev/null
  mkdir -m 0700 "$work/run" # the user manager's runtime folder
  out=$(systemd-analyze verify "$prefix/lib/systemd/system/mynetwork@ms0.service" 2>&1) ||
    out="${out:-systemd-analyze verify mynetwork@ms0.service failed}"
  local user
  user=$(XDG_RUNTIME_DIR="$work/run" systemd-analyze --user verify \
    "$prefix/lib/systemd/user/mynetwork-userspace@ms0.service" 2>&1) ||
    user="${user:-systemd-analyze --user verify mynetwork-userspace@ms0.service failed}"
  out="$out$user"
  if [ -z "$out" ]; then
    echo "check-service: systemd-analyze verify of both units: ok"
  elif $strict; then
    fail "systemd-analyze verify: $out"
  else
    echo "check-service: systemd-analyze verify (a failure under CI=true): $out" >&2
  fi
}

check_prefix /usr/local
check_prefix /usr
verify
