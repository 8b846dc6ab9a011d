#!/bin/sh
# Every item of the OCaml library's interfaces (val, type, module,
# exception) carries a doc comment: right after it (before a blank line or
# the next item) or right before it. Items after a (**/**) stop are hidden
# from the docs and not checked. odoc itself has no such warning.
#   usage: check-ocaml-docs.sh FILE.mli...
# Prints each undocumented item; exits 1 if there is one.
set -eu
awk '
    function flush(   ) {
        if (item != "" && !documented) { printf "%s:%d: undocumented: %s\n", file, line, item; bad++ }
        item = ""
    }
    FNR == 1 { flush(); file = FILENAME; hidden = 0; prev_doc = 0; in_doc = 0 }
    /^[ \t]*\(\*\*\/\*\*\)/ { flush(); hidden = 1; next }
    hidden { next }
    {
        starts_doc = ($0 ~ /^[ \t]*\(\*\*/)
        is_item = ($0 ~ /^[ \t]*(val|type|module|exception|external|class)[ \t]/ && !in_doc)
        if (is_item) {
            flush()
            item = $0; sub(/^[ \t]+/, "", item); line = FNR
            documented = prev_doc
        } else if (starts_doc && item != "") {
            documented = 1
        } else if ($0 ~ /^[ \t]*$/ && item != "") {
            flush()
        }
        if (starts_doc) in_doc = 1
        if (in_doc && $0 ~ /\*\)[ \t]*$/) { in_doc = 0; prev_doc = 1 }
        else if ($0 !~ /^[ \t]*$/ && !in_doc) prev_doc = 0
        else if ($0 ~ /^[ \t]*$/) prev_doc = 0
    }
    END { flush(); if (bad) exit 1 }
' "$@"
