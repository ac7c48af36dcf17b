#!/usr/bin/env bash
# format.sh: checks that the C, C++ and OpenCL sources (*.c *.h *.cpp *.cl under
# src include tests tools cl; not the fuzz corpora) follow .clang-format, with
# clang-format 14 (Debian 12's; other versions format a little differently).
# Prints a diff for each file that differs and exits 1; CI runs it.
#
# usage: tools/format.sh          check
#        tools/format.sh --fix    rewrite the files that differ (clang-format -i)
#        CLANG_FORMAT=clang-format-14 tools/format.sh
set -euo pipefail
cd "$(dirname "$0")/.."

CLANG_FORMAT=${CLANG_FORMAT:-clang-format}
fix=0
case "${1:-}" in
--fix) fix=1 ;;
"") ;;
*)
    echo "usage: $0 [--fix]" >&2
    exit 2
    ;;
esac

if ! command -v "$CLANG_FORMAT" >/dev/null; then
    echo "format.sh: $CLANG_FORMAT not found (apt-get install clang-format)" >&2
    exit 2
fi
version=$("$CLANG_FORMAT" --version)
case "$version" in
*"version 14."*) ;;
*) echo "format.sh: note: .clang-format is tuned for clang-format 14; this is: $version" >&2 ;;
esac

files=()
while IFS= read -r -d '' f; do
    files+=("$f")
done < <(find src include tests tools cl -path tests/fuzz/corpus -prune -o -type f \
    \( -name '*.c' -o -name '*.h' -o -name '*.cpp' -o -name '*.cl' \) -print0 | LC_ALL=C sort -z)

bad=()
for f in "${files[@]}"; do
    if ! "$CLANG_FORMAT" --style=file --dry-run --Werror "$f" >/dev/null 2>&1; then
        bad+=("$f")
    fi
done

if [ ${#bad[@]} -eq 0 ]; then
    echo "format.sh: ${#files[@]} files follow .clang-format"
    exit 0
fi
if [ $fix -eq 1 ]; then
    "$CLANG_FORMAT" --style=file -i "${bad[@]}"
    echo "format.sh: reformatted ${#bad[@]} file(s): ${bad[*]}"
    exit 0
fi
for f in "${bad[@]}"; do
    "$CLANG_FORMAT" --style=file "$f" | diff -u --label "$f" --label "$f (clang-format)" "$f" - || true
done
echo "format.sh: ${#bad[@]} of ${#files[@]} files differ from .clang-format: ${bad[*]}" >&2
echo "format.sh: run tools/format.sh --fix (or clang-format -i FILE) and review the result" >&2
exit 1
