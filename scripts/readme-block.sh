#!/bin/sh
# Print the code block of a Markdown file that follows the line
# `<!-- file: NAME -->` (the lines between its ``` fences), so that README
# examples are compiled and run as the files they claim to be.
#   usage: readme-block.sh MARKDOWN NAME
# Fails if there is no such block, or more than one.
set -eu
awk -v want="<!-- file: $2 -->" '
    $0 == want { marked++; armed = 1; next }
    armed && /^```/ { if (inside) { armed = 0; inside = 0; done++ } else inside = 1; next }
    inside { print }
    END {
        if (marked != 1 || done != 1) {
            printf "readme-block: %d marker(s) and %d block(s) for %s\n", marked, done, want > "/dev/stderr"
            exit 1
        }
    }' "$1"
