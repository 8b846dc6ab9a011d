# The cases of make test-xen, sourced by dom0.sh (SIDE=dom0) and domu-init
# (SIDE=domu). Both sides run the same list in the same order: case C is
# C_dom0 in dom0 and C_domu in the domU, between two barriers in xenstore
# (sync). Each side prints one line per case on its console:
#   XENTEST <domU type> <case> <side> ok      (or FAIL, then its output)
# and scripts/test-xen.sh requires every "ok" line of every case of the
# lists below. Needs: TYPE (pv, pvh), DOMU (the domU's id), ME (this
# domain's id), P (the payload: bin/, data/, xen/), and on PATH vchan-cat,
# xvc, xen_peer, vchan-socket-proxy and the xenstore tools.
#
# A new kind of domU (a unikernel) adds its list here and its own domU side;
# the dom0 halves of the cases it shares stay as they are.

. "$P/xen/case-lists.sh"

export VCHAN_BACKEND=xen
DATA=$P/data/4M
SUM=$(cat "$P/data/4M.sha256")
DATA1=$P/data/256K
SUM1=$(cat "$P/data/256K.sha256")
ST=/local/domain/$DOMU/data/xentest
if [ "$SIDE" = dom0 ]; then OTHER=domu; PEER=$DOMU; else OTHER=dom0; PEER=0; fi
# Every step is bounded: a hang fails its case (the line names the step)
# instead of stopping the run.
STEP=90
VC=vc
vc() {
    timeout $STEP vchan-cat --backend xen "$@"
    s=$?
    [ $s = 0 ] || say "vchan-cat $*: exit status $s"
    return $s
}
# Unbounded, for the processes a case kills by pid.
VC_KILLABLE="vchan-cat --backend xen"
xvc() { timeout $STEP xvc "$@"; }
xen_peer() { timeout $STEP xen_peer "$@"; }
readme_server() { timeout $STEP readme-server; }
readme_client() { timeout $STEP readme-client; }
socket_proxy() { timeout $STEP vchan-socket-proxy "$@"; }

say() { echo "xentest: $*" >&2; }
# Progress, live on the console (a case's own output is shown at its end).
trace() { echo "xentest: $TYPE $SIDE: $*" > /dev/console; }
digest() { sha256sum | cut -d' ' -f1; }

# Seconds since boot (whole).
now() { cut -d. -f1 /proc/uptime; }

# Barrier NAME: tell the other side we reached NAME, wait until it did
# (150 s at most: counted in time, as a loop runs slowly under emulation).
sync_at() {
    xenstore-write "$ST/$SIDE-$1" 1
    trace "at $1"
    end=$(($(now) + 150))
    until xenstore-read "$ST/$OTHER-$1" > /dev/null 2>&1; do
        # A domU that is gone (a triple fault, which xl turns into its
        # destruction: dom0.sh) will not come.
        if [ "$SIDE" = dom0 ] && [ "$(xl domid "$name" 2> /dev/null)" != "$DOMU" ]; then
            say "no $OTHER at barrier $1: domain $DOMU is gone"
            return 1
        fi
        [ "$(now)" -lt "$end" ] || { say "no $OTHER at barrier $1 after 150 s"; return 1; }
        sleep 0.1
    done
}

# The path of port $2 served by domain $1 for client domain $3.
rv_path() { echo "/local/domain/$1/data/vchan/$3/$2"; }

# Nothing under either domain's data/vchan (which itself may stay, as
# ocaml-vchan and libxenvchan leave it).
no_leftovers() {
    for d in 0 "$DOMU"; do
        left=$(xenstore-ls -f "/local/domain/$d/data/vchan" 2> /dev/null || true)
        [ -z "$left" ] || { say "left in xenstore: $left"; return 1; }
    done
}

# expect_sum NAME GOT WANT
expect_sum() {
    [ "$2" = "$3" ] || { say "$1: digest $2, expected $3"; return 1; }
}

# --- vchan-cat against vchan-cat (both roles, both directions) ---
# dom0 serves and sends; the domU connects and receives.
cat_d0srv_send_dom0() { $VC -N -l "$DOMU" p1 < "$DATA"; }
cat_d0srv_send_domu() { expect_sum recv "$($VC -d 0 p1 | digest)" "$SUM"; }
# dom0 serves and receives.
cat_d0srv_recv_dom0() { expect_sum recv "$($VC -l -d "$DOMU" p2 | digest)" "$SUM"; }
cat_d0srv_recv_domu() { $VC -N 0 p2 < "$DATA"; }
# The domU serves and sends.
cat_dusrv_send_dom0() { expect_sum recv "$($VC -d "$DOMU" p3 | digest)" "$SUM"; }
cat_dusrv_send_domu() { $VC -N -l 0 p3 < "$DATA"; }
# The domU serves and receives.
cat_dusrv_recv_dom0() { $VC -N "$DOMU" p4 < "$DATA"; }
cat_dusrv_recv_domu() { expect_sum recv "$($VC -l -d 0 p4 | digest)" "$SUM"; }
# --- against Xen's C library ---
# Xen's C library leaves its client's directory (empty) in dom0 after a
# clean close: say so, and remove it, so that the check after the case
# looks at what is ours.
c_server_closed() {
    dir=$(rv_path 0 x "$DOMU")
    dir=${dir%/x}
    if xenstore-exists "$dir" && [ -z "$(xenstore-list "$dir")" ]; then
        echo "XENINFO libxenvchan left an empty $dir" > /dev/console
        xenstore-rm "$dir"
    fi
}

# Xen's vchan-socket-proxy in the domU receives from vchan-cat in dom0.
proxy_c_dom0() { $VC -N -l "$DOMU" p6 < "$DATA"; }
proxy_c_domu() {
    # Its standard input held open: at its end, the proxy closes the vchan.
    rm -f /tmp/hold
    mkfifo /tmp/hold
    sleep 600 > /tmp/hold &
    holder=$!
    got=$(socket_proxy 0 "$(rv_path 0 p6 "$ME")" - < /tmp/hold | digest)
    kill "$holder"
    expect_sum vchan-socket-proxy "$got" "$SUM"
}
# Every ring size libxenvchan_server_init makes (1 KiB and 2 KiB in the
# shared page, then 1 to 256 pages), and two mixed ones: the C server in
# dom0 sends 256 KiB, vchan-cat in the domU receives; then the reverse
# direction.
RINGS="1024:1024 2048:2048 1024:2048 4096:4096 8192:8192 16384:16384 32768:32768
  65536:65536 131072:131072 262144:262144 524288:524288 1048576:1048576 4096:1048576"
rings_c_srv_dom0() {
    for rw in $RINGS; do
        r=${rw%:*} w=${rw#*:}
        trace "C server, rings $r/$w"
        xvc server "$DOMU" "$(rv_path 0 "r$r-$w" "$DOMU")" -r "$r" -w "$w" send < "$DATA1" || return 1
        got=$(xvc server "$DOMU" "$(rv_path 0 "s$r-$w" "$DOMU")" -r "$r" -w "$w" recv | digest)
        expect_sum "C server, rings $r/$w" "$got" "$SUM1" || return 1
    done
    c_server_closed
}
rings_c_srv_domu() {
    for rw in $RINGS; do
        r=${rw%:*} w=${rw#*:}
        got=$($VC -d 0 "r$r-$w" | digest)
        expect_sum "vchan-cat client, C rings $r/$w" "$got" "$SUM1" || return 1
        $VC -N 0 "s$r-$w" < "$DATA1" || return 1
    done
}
# vchan-cat serves with each ring size it offers; the C client receives
# and sends.
CAT_RINGS="1024 2048 4096 65536 1048576"
rings_c_cli_dom0() {
    for b in $CAT_RINGS; do
        trace "vchan-cat server, rings $b"
        $VC -N -l --buffer-size "$b" "$DOMU" "c$b" < "$DATA1" || return 1
        got=$($VC -l -d --buffer-size "$b" "$DOMU" "d$b" | digest)
        expect_sum "vchan-cat server, rings $b" "$got" "$SUM1" || return 1
    done
}
rings_c_cli_domu() {
    for b in $CAT_RINGS; do
        got=$(xvc client 0 "$(rv_path 0 "c$b" "$ME")" recv | digest)
        expect_sum "C client, vchan-cat rings $b" "$got" "$SUM1" || return 1
        xvc client 0 "$(rv_path 0 "d$b" "$ME")" send < "$DATA1" || return 1
    done
}

# --- the Rust API (rust/vchan/examples/xen_peer.rs) against the C library ---
api_d0srv_dom0() { xen_peer server "$DOMU" api1 300 1000000; }
api_d0srv_domu() { xvc client 0 "$(rv_path 0 api1 "$ME")" api 300 1000000; }
api_dusrv_dom0() { xvc client "$DOMU" "$(rv_path "$DOMU" api2 0)" api 300 1000000; }
api_dusrv_domu() { xen_peer server 0 api2 300 1000000; }

# --- the README's OCaml Lwt programs (server in domain 0, client in 1) ---
ocaml_readme_dom0() {
    out=$(readme_server) || return 1
    [ "$out" = "server got: HELLO" ] || { say "server printed: $out"; return 1; }
}
ocaml_readme_domu() {
    [ "$ME" = 1 ] || { say "the README's client connects from domain 1, this is $ME"; return 1; }
    out=$(readme_client) || return 1
    [ "$out" = "client got: hello" ] || { say "client printed: $out"; return 1; }
}

# --- docs/real-xen.md's two-domain commands ---
# Its "in dom0" line runs in dom0 and its "in domain 5" line in the domU,
# with the domU's id for 5, in /tmp, where "file" is the 4 MiB data.
doc_line() { # WHERE
    line=$(grep -F "# in $1" "$P/xen/two-domains.sh" | sed "s/ 5 / $DOMU /")
    [ -n "$line" ] || say "docs/real-xen.md: no line for $1"
    echo "$line"
}
two_domains_dom0() {
    line=$(doc_line dom0)
    [ -n "$line" ] && (cd /tmp && rm -f copy && timeout $STEP sh -c "$line") || return 1
    expect_sum "the copy" "$(digest < /tmp/copy)" "$SUM"
}
two_domains_domu() {
    line=$(doc_line "domain 5")
    [ -n "$line" ] && (cd /tmp && ln -sf "$DATA" file && timeout $STEP sh -c "$line")
}

# --- messages name the real domain ids ---
# dom0: only the check after each case (the attempt left nothing behind).
waiting_message_dom0() { :; }
waiting_message_domu() {
    if msg=$($VC --timeout 0.5 0 nobody 2>&1 < /dev/null); then
        say "connected to nobody"; return 1
    fi
    case $msg in
        *"domain $ME to find the server of domain 0 "*) ;;
        *) say "message: $msg"; return 1 ;;
    esac
}

# --- peer death ---
# Receive from vchan-cat ARGS into nothing; write 1 to $2 when the first
# byte came, the exit status to $3 when it ends.
recv_flowing() { # FIRST STATUS VCHAN-CAT-ARGS...
    first=$1 status=$2; shift 2
    rm -f "$first" "$status"
    ( ($VC "$@"; echo $? > "$status") | (head -c 1 > "$first"; cat > /dev/null) ) &
}
wait_file() { # FILE: wait for it to exist and be non-empty (150 s at most)
    trace "waiting for $1"
    end=$(($(now) + 150))
    until [ -s "$1" ]; do
        [ "$(now)" -lt "$end" ] || { say "no $1 after 150 s"; return 1; }
        sleep 0.1
    done
}
# The exit status in FILE must say "ended by itself" (0 or 1, not timeout's).
ended_itself() {
    wait_file "$1" || return 1
    s=$(cat "$1")
    [ "$s" = 0 ] || [ "$s" = 1 ] || { say "$2 ended with status $s"; return 1; }
}

# The same with Xen's C library on both sides: dom0's server SIGKILLed
# while the domU's client receives (the control for the case below).
kill_c_dom0() {
    "$P/bin/xvc" server "$DOMU" "$(rv_path 0 kcc "$DOMU")" send < /dev/zero &
    pid=$!
    sync_at kcc-flowing || return 1
    kill -9 "$pid"
    sync_at kcc-killed || return 1
    # The C library leaves a killed server's rendezvous: not ours.
    xenstore-rm "$(rv_path 0 kcc "$DOMU")"
    c_server_closed
}
kill_c_domu() {
    rm -f /tmp/kcc.first /tmp/kcc.status
    ( (xvc client 0 "$(rv_path 0 kcc "$ME")" recv; echo $? > /tmp/kcc.status) |
        (head -c 1 > /tmp/kcc.first; cat > /dev/null) ) &
    wait_file /tmp/kcc.first || return 1
    sync_at kcc-flowing || return 1
    ended_itself /tmp/kcc.status "the C client of a killed C server" || return 1
    sync_at kcc-killed
}

# This domain still works: programs run, and a file reads back as written
# (after a peer's death, a page still granted and reused would show here).
sane_dom0() { sane; }
sane_domu() { sane; }
sane() {
    for i in 1 2 3 4 5 6 7 8; do
        /bin/true || { say "true failed"; return 1; }
        expect_sum "re-reading $DATA" "$(digest < "$DATA")" "$SUM" || return 1
    done
}

# Programs started in a loop (glibc runs CPUID in each: under nested TCG
# the PVH guest's CPUID exits are where it triple-faulted). Not in the
# default lists; for measuring: VCHAN_RS_XEN_CASES_PVH="spawn1 spawn2 ...".
SPAWNS=500
spawn_dom0() { :; }
spawn_domu() {
    i=0
    while [ $i -lt $SPAWNS ]; do
        /bin/true || { say "true failed at run $i"; return 1; }
        i=$((i + 1))
    done
}

# dom0's server is SIGKILLed mid-transfer: the domU's client sees the end;
# a new server on the same port then serves it (the owner key).
kill_server_dom0() {
    $VC_KILLABLE -l "$DOMU" ks < /dev/zero > /dev/null &
    pid=$!
    sync_at ks-flowing || return 1
    kill -9 "$pid"
    sync_at ks-killed || return 1
    $VC -N -l "$DOMU" ks < "$DATA"
}
kill_server_domu() {
    recv_flowing /tmp/ks.first /tmp/ks.status -d 0 ks
    wait_file /tmp/ks.first || return 1
    sync_at ks-flowing || return 1
    ended_itself /tmp/ks.status "the client of a killed server" || return 1
    sync_at ks-killed || return 1
    expect_sum "from the restarted server" "$($VC -d 0 ks | digest)" "$SUM"
}
# dom0's client is SIGKILLed mid-transfer: the domU's server sees the end.
kill_client_dom0() {
    rm -f /tmp/kc.fifo /tmp/kc.first
    mkfifo /tmp/kc.fifo
    (head -c 1 > /tmp/kc.first; cat > /dev/null) < /tmp/kc.fifo &
    $VC_KILLABLE -d "$DOMU" kc > /tmp/kc.fifo &
    pid=$!
    wait_file /tmp/kc.first || return 1
    kill -9 "$pid"
    sync_at kc-killed
}
kill_client_domu() {
    rm -f /tmp/kc.status
    ($VC -l 0 kc < /dev/zero; echo $? > /tmp/kc.status) &
    sync_at kc-killed || return 1
    ended_itself /tmp/kc.status "the server of a killed client"
}

# --- the same transfer with vchan-rs and with the C library (item 4) ---
# dom0 sends 32 MiB with 64 KiB rings, the domU receives into wc; timed in
# the domU from the client's start to its end. TIMING_ROUNDS rounds, each
# vchan-cat then the C library: under TCG one transfer can take three times
# another of the same program (the host's load), so the line gives every
# time and the ratio of the medians.
TIMING_BYTES=33554432
TIMING_ROUNDS=3
timing_dom0() {
    head -c "$TIMING_BYTES" /dev/urandom > /tmp/t32
    i=0
    while [ $i -lt $TIMING_ROUNDS ]; do
        i=$((i + 1))
        $VC -N -l "$DOMU" "t1-$i" < /tmp/t32 || return 1
        xvc server "$DOMU" "$(rv_path 0 "t2-$i" "$DOMU")" -r 65536 -w 65536 send < /tmp/t32 || return 1
        c_server_closed
    done
    rm -f /tmp/t32
}
uptime_cs() { tr -d . < /proc/uptime | cut -d' ' -f1; }
timing_domu() {
    i=0 vs= cs=
    while [ $i -lt $TIMING_ROUNDS ]; do
        i=$((i + 1))
        a=$(uptime_cs)
        n=$($VC -d 0 "t1-$i" | wc -c) || return 1
        b=$(uptime_cs)
        m=$(xvc client 0 "$(rv_path 0 "t2-$i" "$ME")" recv | wc -c) || return 1
        e=$(uptime_cs)
        [ "$n" = "$TIMING_BYTES" ] && [ "$m" = "$TIMING_BYTES" ] ||
            { say "round $i: received $n and $m bytes"; return 1; }
        vs="$vs $((b - a))" cs="$cs $((e - b))"
    done
    echo "$vs" "$cs" | awk -v t="$TYPE" -v k=$TIMING_ROUNDS '
        function med(from,   i, j, x, v, s) {
            for (i = 1; i <= k; i++) v[i] = $(from + i)
            for (i = 2; i <= k; i++) { x = v[i]; for (j = i - 1; j >= 1 && v[j] > x; j--) v[j + 1] = v[j]; v[j + 1] = x }
            return (k % 2) ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2
        }
        function all(from,   i, s) {
            for (i = 1; i <= k; i++) s = s sprintf("%s%.2f", i > 1 ? " " : "", $(from + i) / 100)
            return s
        }
        { r = med(0); c = med(k)
          printf "XENTIME %s 32 MiB dom0 -> domU (median of %d): vchan-cat %.2f s (%s), C libxenvchan %.2f s (%s), ratio C/vchan-rs %.2f\n",
              t, k, r / 100, all(0), c / 100, all(k), (r ? c / r : 0) }'
}

# --- the domU destroyed mid-transfer (the last case of a list) ---
# Two transfers run: dom0 serving the domU, and the domU serving dom0.
destroy_dom0() {
    rm -f /tmp/d1.status /tmp/d2.status
    ($VC -l "$DOMU" dd1 < /dev/zero > /dev/null; echo $? > /tmp/d1.status) &
    recv_flowing /tmp/d2.first /tmp/d2.status -d "$DOMU" dd2
    sync_at dd-flowing || return 1
    wait_file /tmp/d2.first || return 1
    xl destroy "$DOMU" || return 1
    ended_itself /tmp/d1.status "dom0's server" || return 1
    ended_itself /tmp/d2.status "dom0's client" || return 1
    no_leftovers
}
destroy_domu() {
    $VC -l 0 dd2 < /dev/zero > /dev/null &
    srv=$!
    recv_flowing /tmp/d1.first /tmp/d1.status -d 0 dd1
    wait_file /tmp/d1.first || return 1
    kill -0 "$srv" 2> /dev/null || { say "vchan-cat -l 0 dd2 ended before dom0 destroyed us"; return 1; }
    # Flowing both ways: say so before dom0 destroys us.
    echo "XENTEST $TYPE destroy domu ok"
    sync_at dd-flowing
    sleep 600
}

# Run the list of $TYPE on this side, printing a result line per case.
# Once both sides finished a case, dom0 checks that nothing is left in
# xenstore (destroy_dom0 checks for itself: the domU is gone).
run_cases() {
    eval "cases=\$CASES_$TYPE"
    for c in $cases; do
        sync_at "start-$c" || { echo "XENTEST $TYPE $c $SIDE FAIL (out of step)"; return 1; }
        say "$TYPE $c ($SIDE) starts"
        if [ "$c" = destroy ] && [ "$SIDE" = domu ]; then
            destroy_domu 2>&1 || {
                echo "XENTEST $TYPE destroy domu FAIL"
                dmesg | grep 'segfault\|general protection\|traps:' | tail -n 3
            }
            return
        fi
        out=$("${c%[0-9]}_$SIDE" 2>&1)
        rc=$?
        if [ "$c" != destroy ]; then
            sync_at "end-$c" || rc=1
            if [ "$SIDE" = dom0 ] && [ $rc = 0 ]; then
                out=$(no_leftovers 2>&1) || rc=1
            fi
        fi
        if [ $rc = 0 ]; then
            echo "XENTEST $TYPE $c $SIDE ok"
            printf '%s\n' "$out" | grep '^XENTIME'
        else
            echo "XENTEST $TYPE $c $SIDE FAIL"
            {
                printf '%s\n' "$out"
                # A crash's address, for addr2line on the unstripped binary.
                dmesg | grep 'segfault\|general protection\|traps:' | tail -n 3
            } | sed "s/^/xentest: $TYPE $c $SIDE: /"
            # What a failed case left must not fail the next ones.
            [ "$SIDE" = domu ] || for d in 0 "$DOMU"; do
                for k in $(xenstore-list "/local/domain/$d/data/vchan" 2> /dev/null); do
                    xenstore-rm "/local/domain/$d/data/vchan/$k"
                done
            done
        fi
    done
}
