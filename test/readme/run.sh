#!/bin/sh
# The README's examples as separate processes (domains 0 and 1 of the unix
# backend), each pair in a fresh rendezvous directory:
#   1. server.ml and client.ml, which must print what they exchanged;
#   2. the two lines of the vchan-cat block, with vchan-cat on PATH, in a
#      directory holding a random `file`: the first line (backgrounded)
#      must write a `copy` identical to it.
#   3. the two commands of the xensim block, with vchan-cat and
#      vchan-xensim on PATH: Xen's vchan-socket-proxy (its standard input
#      held open) must write out what vchan-cat sent it.
#   usage: run.sh SERVER_EXE CLIENT_EXE VCHAN_CAT_SH VCHAN_CAT_EXE XENSIM_SH VCHAN_XENSIM
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

ln -s "$here/$6" "$dir/bin/vchan-xensim"
mkdir "$dir/xs"
first=$(grep -v '^#' "$5" | sed -n 1p) second=$(grep -v '^#' "$5" | sed -n 2p)
(
    cd "$dir/xs" && head -c 300000 /dev/urandom > file
    export PATH="$dir/bin:$PATH" VCHAN_UNIX_DIR=$dir/rv3
    mkfifo hold
    sleep 120 > hold &
    holder=$!
    timeout 60 sh -c "$first" < hold > out &
    proxy=$!
    ok=1
    if timeout 60 sh -c "$second" < file; then
        # vchan-cat is done once the proxy has read it all from the ring;
        # the proxy writes it out right after.
        i=0
        while [ "$(wc -c < out)" -lt 300000 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
        cmp -s file out && ok=0
    fi
    kill "$proxy" "$holder" 2> /dev/null
    wait
    exit $ok
)
if [ $? -eq 0 ]; then
    passed=$((passed + 1)); echo "readme: ok: the xensim commands (vchan-socket-proxy and vchan-cat)"
else
    failed=$((failed + 1)); echo "readme: FAILED: the xensim commands: $first / $second"
fi

if [ "$failed" -eq 0 ]; then r=ok; else r=FAILED; fi
echo "test result: $r. $passed passed; $failed failed"
[ "$failed" -eq 0 ]
