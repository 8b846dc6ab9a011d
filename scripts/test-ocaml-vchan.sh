#!/usr/bin/env bash
# make test-ocaml-vchan (part of make test): mirage/ocaml-vchan's xencat,
# built from the pinned sources (scripts/ocaml-vchan.sh), and vchan-cat move
# a file both ways under vchan-xensim, in both roles: xencat as the server
# or the client, sending or receiving; each file arrives whole (sha256).
# ocaml-vchan reaches grants and event channels through Xen's C libraries
# (xensim's here) and xenstore through xenstored's socket, which
# vchan-xensim serves (XENSTORED_PATH). Needs make build first. Fails (it
# does not skip) when ocaml-vchan cannot be built.
set -euo pipefail

project=$(cd "$(dirname "$0")/.." && pwd)
xensim=$project/target/release/vchan-xensim
vchan_cat=$project/_build/default/bin/vchan_cat.exe
for f in "$xensim" "$vchan_cat"; do
    [ -x "$f" ] || { echo "test-ocaml-vchan: $f missing (make build)" >&2; exit 1; }
done
built=$(bash "$project/scripts/ocaml-vchan.sh") || exit 1
xencat=$(head -1 <<< "$built")

work=$(mktemp -d /tmp/vchan-xencat.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

size=$((8 << 20 | 12345))
head -c "$size" /dev/urandom > "$work/in"
want=$(sha256sum < "$work/in" | cut -d' ' -f1)

# Until FILE holds SIZE bytes (or 60 s passed: the case then fails on its
# checksum).
until_size() {
    local file=$1 n=$2 i
    for ((i = 0; i < 1200; i++)); do
        [ "$(stat -c %s "$file" 2> /dev/null || echo 0)" -ge "$n" ] && return 0
        sleep 0.05
    done
}

# xencat ends as soon as its standard input ends, closing its vchan before
# its last buffered write is through: its input stays open until the
# receiver has everything (a sender's after its file).
xencat_in() { # MODE(send|receive) OUT
    if [ "$1" = send ]; then cat "$work/in"; fi
    until_size "$2" "$size"
}

# One case: NAME SERVER(xencat|vchan-cat) SENDER(xencat|vchan-cat).
run() {
    local name=$1 server=$2 sender=$3
    local dir=$work/$name out=$work/$name.out
    mkdir -m 700 "$dir"
    : > "$out"
    export VCHAN_UNIX_DIR=$dir
    local role
    for role in server client; do
        local dom peer listen=()
        if [ $role = server ]; then dom=0 peer=1 listen=(-l); else dom=1 peer=0; fi
        local prog=$server
        [ $role = client ] && { [ "$server" = xencat ] && prog=vchan-cat || prog=xencat; }
        local mode=receive
        [ "$prog" = "$sender" ] && mode=send
        if [ "$prog" = xencat ]; then
            if [ $mode = send ]; then
                xencat_in send "$out" | "$xensim" --domid $dom -- "$xencat" "${listen[@]}" $peer "$name" > /dev/null &
            else
                xencat_in receive "$out" | "$xensim" --domid $dom -- "$xencat" "${listen[@]}" $peer "$name" > "$out" &
            fi
        elif [ $mode = send ]; then
            VCHAN_DOMID=$dom "$vchan_cat" -N "${listen[@]}" $peer "$name" < "$work/in" > /dev/null &
        else
            VCHAN_DOMID=$dom "$vchan_cat" "${listen[@]}" $peer "$name" < /dev/null > "$out" &
        fi
        pids+=($!)
        if [ $role = server ]; then
            # The client may start once the server published its rendezvous.
            local i
            for ((i = 0; i < 1200; i++)); do
                [ -e "$dir/store/local/domain/0/data/vchan/1/$name/event-channel" ] && break
                sleep 0.05
            done
        fi
    done
    local p status=0
    for p in "${pids[@]}"; do wait "$p" || status=$?; done
    pids=()
    local got
    got=$(sha256sum < "$out" | cut -d' ' -f1)
    if [ "$status" -ne 0 ] || [ "$got" != "$want" ]; then
        echo "test-ocaml-vchan: $name: FAILED (exit status $status; $(stat -c %s "$out") of $size bytes, sha256 $got, want $want)" >&2
        exit 1
    fi
    echo "test-ocaml-vchan: $name: $size bytes, sha256 matches"
}

run xencat-server-sends xencat xencat
run xencat-server-receives xencat vchan-cat
run vchan-cat-server-sends vchan-cat vchan-cat
run vchan-cat-server-receives vchan-cat xencat
echo "test-ocaml-vchan: ocaml-vchan's xencat and vchan-cat: 4 cases passed"
