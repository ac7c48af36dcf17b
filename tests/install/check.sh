#!/usr/bin/env bash
# check.sh: the library as a user gets it. Builds it without tests
# (-Dtests=disabled: no test may be defined) in a temporary folder, installs
# it into a temporary prefix, checks that the shared library exports the
# public wl_* API and nothing else, then compiles consumer.c against the
# installed copy with `pkg-config --cflags --libs warploss` and runs it on the
# installed kernels (WARPLOSS_KERNEL_DIR unset). Needs an OpenCL device
# (PoCL: POCL_DEVICES=pthread). The folder is removed on success and kept,
# for a look, on failure.
#
# usage: tests/install/check.sh [MESON-SETUP-OPTION...]   (e.g. -Dwerror=true)
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/warploss-install.XXXXXX)
prefix=$work/prefix
ok=0
trap 'if [ $ok -eq 1 ]; then rm -rf "$work"; else echo "install check: FAILED; its files are in $work" >&2; fi' EXIT

say() { printf '== install check: %s\n' "$*"; }

say "build without tests, prefix $prefix"
meson setup "$work/build" "$root" --prefix="$prefix" --libdir=lib -Dtests=disabled "$@" >"$work/setup.log" ||
    { cat "$work/setup.log"; exit 1; }
meson compile -C "$work/build"
tests=$(meson introspect --tests "$work/build")
if [ "$tests" != "[]" ]; then
    echo "install check: -Dtests=disabled still defines tests: $tests" >&2
    exit 1
fi

say "install"
meson install -C "$work/build" --quiet
lib=$prefix/lib/libwarploss.so
[ -e "$lib" ] || { echo "install check: $lib was not installed" >&2; exit 1; }
extra=$(nm -D --defined-only "$lib" | awk 'NF >= 3 && $3 !~ /^wl_/ {print $3}')
if [ -n "$extra" ]; then
    echo "install check: $lib exports symbols outside the public API: $(echo "$extra" | tr '\n' ' ')" >&2
    exit 1
fi
echo "exports: $(nm -D --defined-only "$lib" | awk 'NF >= 3' | wc -l) wl_* symbols; soname" \
    "$(readelf -d "$lib" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')"

say "compile tests/install/consumer.c with pkg-config"
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
want=$(meson introspect --projectinfo "$work/build" | python3 -c 'import json, sys; print(json.load(sys.stdin)["version"])')
got=$(pkg-config --modversion warploss)
[ "$got" = "$want" ] || { echo "install check: pkg-config says version $got, the project is $want" >&2; exit 1; }
# shellcheck disable=SC2046 # pkg-config's output is a list of words
"${CC:-cc}" -std=c11 -Wall -Wextra -Werror -o "$work/consumer" "$root/tests/install/consumer.c" \
    $(pkg-config --cflags --libs warploss)

say "run it on the installed library and kernels"
export LD_LIBRARY_PATH=$prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
unset WARPLOSS_KERNEL_DIR
libs=$(ldd "$work/consumer")
if ! grep -q "=> $prefix/lib/libwarploss.so" <<<"$libs"; then
    echo "$libs"
    echo "install check: consumer does not load $prefix/lib/libwarploss.so" >&2
    exit 1
fi
# An older, incomplete install's kernels in the unversioned folder: never read.
printf '/* an older warploss */\n' >"$prefix/share/warploss/scan.cl"
"$work/consumer" "$prefix/share/warploss/$want"
ok=1
say "passed"
