#!/bin/sh
# The README's examples as separate processes (domains 0 and 1 of the unix
# backend), each pair in a fresh rendezvous directory:
#   1. server.ml and client.ml, which must print what they exchanged;
#   2. the two lines of the vchan-cat block, with vchan-cat on PATH, in a
#      directory holding a random `file`: the first line (backgrounded)
#      must write a `copy` identical to it.
#   usage: run.sh SERVER_EXE CLIENT_EXE VCHAN_CAT_SH VCHAN_CAT_EXE
set -u
here=$(pwd)
dir=$(mktemp -d "${TMPDIR:-/tmp}/vchan-readme.XXXXXX")
trap 'rm -rf "$dir"' EXIT
export VCHAN_BACKEND=unix
passed=0 failed=0

VCHAN_UNIX_DIR=$dir/rv1 VCHAN_DOMID=0 timeout 60 "$1" > "$dir/server.out" &
server=$!
VCHAN_UNIX_DIR=$dir/rv1 VCHAN_DOMID=1 timeout 60 "$2" > "$dir/client.out"
client=$?
wait "$server"
server=$?
if [ "$server" -eq 0 ] && [ "$client" -eq 0 ] &&
    [ "$(cat "$dir/client.out")" = "client got: hello" ] &&
    [ "$(cat "$dir/server.out")" = "server got: HELLO" ]; then
    passed=$((passed + 1)); echo "readme: ok: server.ml and client.ml talk"
else
    failed=$((failed + 1))
    echo "readme: FAILED: server.ml exit $server, client.ml exit $client"
    cat "$dir/server.out" "$dir/client.out"
fi

mkdir "$dir/bin" "$dir/cat"
ln -s "$here/$4" "$dir/bin/vchan-cat"
first=$(sed -n 1p "$3") second=$(sed -n 2p "$3")
(
    cd "$dir/cat" && head -c 300000 /dev/urandom > file
    export PATH="$dir/bin:$PATH" VCHAN_UNIX_DIR=$dir/rv2
    timeout 60 sh -c "$first" &
    listener=$!
    timeout 60 sh -c "$second" && wait "$listener" && cmp -s file copy
)
if [ $? -eq 0 ]; then
    passed=$((passed + 1)); echo "readme: ok: the vchan-cat lines copy a file"
else
    failed=$((failed + 1)); echo "readme: FAILED: the vchan-cat lines: $first / $second"
fi

if [ "$failed" -eq 0 ]; then r=ok; else r=FAILED; fi
echo "test result: $r. $passed passed; $failed failed"
[ "$failed" -eq 0 ]
