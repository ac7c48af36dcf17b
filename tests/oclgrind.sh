#!/bin/sh
# Run a test program under oclgrind with data-race and uninitialized-value
# checks, and fail on any report: oclgrind's exit status is the program's own,
# so its log is read instead (empty when nothing was reported).
# usage: oclgrind.sh OCLGRIND PROGRAM [ARGS...]
set -u
oclgrind=$1
shift
log=$(mktemp "${TMPDIR:-/tmp}/warploss-oclgrind.XXXXXX") || exit 1
status=0
"$oclgrind" --data-races --uninitialized --log "$log" "$@" || status=$?
if [ -s "$log" ]; then
    cat "$log"
    echo "oclgrind reported $(grep -c -E '^[A-Z]' "$log") error(s) or warning(s) (above)" >&2
    [ "$status" -ne 0 ] || status=1
fi
rm -f "$log"
exit "$status"
