#!/bin/sh
# dune build @doc's output, less one known warning: odoc cannot link to
# libraries outside the workspace (Debian ships no .odoc files for Stdlib,
# Lwt or Cstruct, and dune 2.9 does not make them), so references to those
# stay plain text. Any other odoc output is an error.
#   usage: dune build @doc 2>&1 | check-odoc-log.sh
set -eu
awk '
    # dune names the action before its output when stderr is no terminal.
    /^ +odoc [^ ]+$/ { next }
    /^File ".*\.odoc":$/ { held = $0; next }
    /^Warning: Couldn.t find the following modules:$/ && held != "" { missing = 1; next }
    missing {
        missing = 0
        n = split($0, mods, " ")
        for (i = 1; i <= n; i++)
            if (mods[i] !~ /^(Stdlib|Cstruct|Lwt|Lwt_io|Lwt_unix|Lwt_engine|Unix|Bigarray|Format)$/) {
                print held; print "Warning: Couldn'"'"'t find the following modules:"; print; bad = 1; next
            }
        held = ""; next
    }
    { if (held != "") { print held; held = "" } print; bad = 1 }
    END { if (held != "") { print held; bad = 1 } exit bad }
'
