#!/bin/sh
# The README's OCaml server and client, as two processes (domains 0 and 1 of
# the unix backend) in a fresh rendezvous directory.
#   usage: run.sh SERVER_EXE CLIENT_EXE
set -u
dir=$(mktemp -d "${TMPDIR:-/tmp}/vchan-readme.XXXXXX")
trap 'rm -rf "$dir"' EXIT
VCHAN_BACKEND=unix VCHAN_UNIX_DIR=$dir/rv VCHAN_DOMID=0 timeout 60 "$1" > "$dir/server.out" &
server=$!
VCHAN_BACKEND=unix VCHAN_UNIX_DIR=$dir/rv VCHAN_DOMID=1 timeout 60 "$2" > "$dir/client.out"
client=$?
wait "$server"
server=$?
if [ "$server" -eq 0 ] && [ "$client" -eq 0 ] &&
    [ "$(cat "$dir/client.out")" = "client got: hello" ] &&
    [ "$(cat "$dir/server.out")" = "server got: HELLO" ]; then
    echo "readme: ok: server.ml and client.ml talk"
    echo "test result: ok. 1 passed; 0 failed"
else
    echo "readme: FAILED: server exit $server, client exit $client"
    cat "$dir/server.out" "$dir/client.out"
    echo "test result: FAILED. 0 passed; 1 failed"
    exit 1
fi
