#!/bin/sh
# A man page (groff, no fill) from a program's --help text, which is
# written in man's own sections (NAME, SYNOPSIS, ...).
#   usage: man-from-help.sh NAME VERSION PROGRAM > NAME.1
set -eu
upper=$(printf '%s' "$1" | tr '[:lower:]' '[:upper:]')
printf '.TH %s 1 "" "vchan-rs %s" "vchan-rs"\n' "$upper" "$2"
"$3" --help | sed -e 's/\\/\\e/g' -e "s/^[.']/\\\\\\&&/" -e 's/^    //' \
    -e 's/^\([A-Z][A-Z ]*\)$/.SH \1\
.nf/'
