#!/usr/bin/env bash
# Demo: move a generated 64 MiB file between two vchan-cat processes over the
# unix backend (no hypervisor), check its SHA-256 and print the throughput.
#   bash scripts/demo.sh [SIZE_MIB]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

mib=${1:-64}
dune build @install
cat_exe=$PWD/_build/install/default/bin/vchan-cat

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vchan-demo.XXXXXX")
listener=
cleanup() {
  if [ -n "$listener" ]; then kill "$listener" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# Both processes meet in a fresh rendezvous directory.
export VCHAN_UNIX_DIR=$tmp/vchan VCHAN_BACKEND=unix

echo "demo: generating $mib MiB of random data"
head -c $((mib * 1024 * 1024)) /dev/urandom > "$tmp/in"
sum_in=$(sha256sum < "$tmp/in" | cut -d' ' -f1)

# Domain 0 serves client domain 1 on port "demo" and writes what it receives
# until the client closes (-d: it sends nothing, so it does not read its
# standard input).
VCHAN_DOMID=0 "$cat_exe" -l -d -v --buffer-size 65536 1 demo \
  > "$tmp/out" 2> "$tmp/listener.log" &
listener=$!

# Domain 1 connects (waiting up to 10 s for the server), sends the file and
# closes at its end (-N).
start=$(date +%s.%N)
VCHAN_DOMID=1 "$cat_exe" -N -v --timeout 10 0 demo < "$tmp/in" 2> "$tmp/client.log"
wait "$listener"
listener=
end=$(date +%s.%N)

sed 's/^/demo: server: /' "$tmp/listener.log"
sed 's/^/demo: client: /' "$tmp/client.log"
sum_out=$(sha256sum < "$tmp/out" | cut -d' ' -f1)
echo "demo: sha256 sent     $sum_in"
echo "demo: sha256 received $sum_out"
if [ "$sum_in" != "$sum_out" ]; then
  echo "demo: FAILED: the copy differs" >&2
  exit 1
fi
left=$(find "$VCHAN_UNIX_DIR" -type f ! -path "$VCHAN_UNIX_DIR/.vchan-root" 2>/dev/null | wc -l)
awk -v mib="$mib" -v s="$start" -v e="$end" -v left="$left" 'BEGIN {
  t = e - s
  printf "demo: ok: %d MiB in %.3f s, %.0f MB/s (%.2f GiB/s) end to end, connection set-up included; %d file(s) left behind\n",
    mib, t, mib * 1048576 / t / 1e6, mib / 1024 / t, left
}'
