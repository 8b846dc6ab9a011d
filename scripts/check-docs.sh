#!/bin/sh
# What a user reads stays true:
#  1. Every fenced code block of README.md and docs/*.md is either a
#     ```text block (output, a listing: nothing to run) or follows a
#     `<!-- file: NAME -->` line, and NAME is one that a test extracts:
#     listed below with the file that extracts it, which must name it.
#     A new block fails here until a test runs it. The one exception is
#     a block after `<!-- not run: WHY -->` (something no machine here can
#     run, e.g. the mirage tool): allowed, and listed at every run.
#  2. No issue numbers (which a reader cannot see) in README.md, docs/,
#     the programs' sources (their --help and man pages), the bench's
#     output or the public interfaces.
#  3. Every page of docs/ is installed with the package (docs/dune).
#   usage: check-docs.sh   (from the project's root)
set -eu
cd "$(dirname "$0")/.."
bad=0
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT

# DOC NAME EXTRACTOR (a file that extracts the block; make test runs it,
# but docs/mirage.md's by make test-unikernel and docs/real-xen.md's by
# make test-xen).
extracted='
README.md Cargo.toml rust/vchan/tests/readme.rs
README.md examples/server.rs rust/vchan/tests/readme.rs
README.md server.ml test/readme/dune
README.md client.ml test/readme/dune
README.md dune-project scripts/release-check.sh
README.md dune scripts/release-check.sh
README.md build.sh scripts/release-check.sh
README.md vchan-cat.sh test/readme/dune
docs/xensim.md xensim.sh test/readme/dune
docs/xensim.md xenstore-tools.sh rust/xensim/tests/xenstored.rs
docs/mirage.md rename.sh scripts/test-mirage-xen.sh
docs/mirage.md rustup.sh scripts/test-mirage-xen.sh
docs/mirage.md qubes-dune scripts/test-mirage-xen.sh
docs/mirage.md config.ml scripts/test-mirage-xen.sh
docs/real-xen.md two-domains.sh scripts/test-xen.sh
'

blocks=$(awk '
    FNR == 1 { name = ""; inside = 0 }
    /^<!-- file: .* -->$/ { name = $3; next }
    /^<!-- not run: .* -->$/ { name = "(not-run)"; next }
    /^```/ {
        if (inside) { inside = 0; name = ""; next }
        inside = 1; lang = substr($0, 4)
        print FILENAME, FNR, (lang == "" ? "-" : lang), (name == "" ? "-" : name)
        next
    }
    !inside && NF { name = "" }
' README.md docs/*.md)

echo "$blocks" | while read -r doc line lang name; do
    [ -n "$doc" ] || continue
    if [ "$name" = "(not-run)" ]; then
        echo "check-docs: $doc:$line: a \`\`\`$lang block marked not run"
        continue
    fi
    if [ "$name" = - ]; then
        if [ "$lang" != text ]; then
            echo "check-docs: $doc:$line: a \`\`\`$lang block that no test runs: mark it <!-- file: NAME --> and extract it in a test, or make it \`\`\`text if it is not a command or program"
            echo bad
        fi
        continue
    fi
    extractor=$(echo "$extracted" | awk -v d="$doc" -v n="$name" '$1 == d && $2 == n { print $3 }')
    if [ -z "$extractor" ]; then
        echo "check-docs: $doc:$line: block $name is extracted by no test listed in scripts/check-docs.sh"
        echo bad
    elif ! grep -qF "$name" "$extractor" || ! grep -qF "$(basename "$doc")" "$extractor"; then
        echo "check-docs: $doc:$line: $extractor names neither block $name nor $doc"
        echo bad
    fi
done > "$tmp" 2>&1 || true
grep -v '^bad$' "$tmp" || true
if grep -q '^bad$' "$tmp"; then bad=1; fi

# Each listed block exists exactly once.
echo "$extracted" | while read -r doc name extractor; do
    [ -n "$doc" ] || continue
    sh scripts/readme-block.sh "$doc" "$name" > /dev/null 2>&1 ||
        echo "check-docs: $doc: no single block <!-- file: $name --> (listed for $extractor)"
done > "$tmp"
if [ -s "$tmp" ]; then cat "$tmp"; bad=1; fi

issues=$(grep -rniE 'issues? ?#?[0-9]' README.md docs/ bin/ rust/*/src/bin bench/src \
    ocaml/*.mli ocaml/lwt-unix/*.mli ocaml/xen/*.mli rust/vchan/src rust/vchan-core/src 2>/dev/null || true)
if [ -n "$issues" ]; then
    echo "check-docs: issue numbers where users read them:"
    echo "$issues"
    bad=1
fi

# Every page of docs/ is installed (docs/dune), so that the README's links
# resolve in an installed copy.
for f in docs/*.md; do
    b=$(basename "$f")
    grep -qF "($b as docs/$b)" docs/dune || { echo "check-docs: $f is not installed: list it in docs/dune"; bad=1; }
done

n=$(echo "$blocks" | grep -c . || true)
if [ "$bad" -ne 0 ]; then
    echo "check-docs: FAILED"
    exit 1
fi
echo "check-docs: ok: $n code blocks in README.md and docs/, each extracted by a test, text, or marked not run (above); no issue numbers"
