#!/bin/sh
# dom0's PID 1 for make test-xen (started by init-dom0-initrd; the payload
# is on /mnt): bring up Xen's toolstack without systemd, run the cases
# against one domU per type (cases.sh), print every result line again in
# one block, and power off.
P=/mnt
xenbin=$(ls -d /usr/lib/xen-*/bin | head -n1)
export PATH=$P/bin:/usr/sbin:/usr/bin:/sbin:/bin:$xenbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
for m in xenfs xen-evtchn xen-gntdev xen-gntalloc xen-privcmd; do modprobe "$m"; done
mount -t xenfs xenfs /proc/xen
mkdir -p /run/xen /run/xenstored /var/lib/xen /var/lib/xenstored /var/log/xen/console
xenstored --pid-file=/run/xenstored.pid
xen-init-dom0 > /dev/null
xenconsoled --log=guest --pid-file=/run/xenconsoled.pid
echo "XENTEST-BOOT $(xl info | sed -n 's/^xen_version *: //p')"

results=/tmp/results
: > $results
kernel=$(ls /boot/vmlinuz-* | head -n1)
for TYPE in pv pvh; do
    name=xt-$TYPE
    cfg=/tmp/$name.cfg
    {
        echo "name = \"$name\""
        echo "type = \"$TYPE\""
        echo "kernel = \"$kernel\""
        echo "ramdisk = \"$P/domu.cpio.gz\""
        echo "memory = 320"
        echo "vcpus = 1"
        echo "extra = \"console=hvc0 quiet xentest_type=$TYPE\""
        echo 'on_poweroff = "destroy"'
        echo 'on_crash = "destroy"'
        # PVH under TCG: keep rdtscp out of the guest (real-xen.md).
        [ "$TYPE" = pvh ] && echo 'tsc_mode = "native"' && echo 'cpuid = "host,rdtscp=0"'
        # PV under TCG: no XSAVE (programs crashed at random with it;
        # docs/real-xen.md).
        [ "$TYPE" = pv ] && echo 'cpuid = "host,xsave=0"'
    } > "$cfg"
    log=/var/log/xen/console/guest-$name.log
    # xl itself has been seen to abort under TCG (a glibc mutex assertion,
    # 1 run in 3): try again.
    tries=0
    until timeout 120 xl -v create "$cfg" > /tmp/xl-create.log 2>&1; do
        xl destroy "$name" 2> /dev/null
        tries=$((tries + 1))
        echo "xentest: xl create $name failed:"
        tail -n 20 /tmp/xl-create.log
        [ $tries -lt 3 ] || break
    done
    DOMU=$(xl domid "$name" 2> /dev/null)
    if [ -z "$DOMU" ]; then
        xl dmesg | tail -n 20
        echo "XENTEST $TYPE create dom0 FAIL" | tee -a $results
        continue
    fi
    echo "xentest: $name is domain $DOMU"
    # The domU's console, live (xenconsoled writes it to $log).
    tail -F "$log" 2> /dev/null | sed -u "s/^/$name| /" &
    tailer=$!
    SIDE=dom0 ME=0
    (
        . $P/xen/cases.sh
        run_cases
    ) | tee -a $results
    # The domU powers itself off at the end of its list (or was destroyed).
    i=0
    while xl domid "$name" > /dev/null 2>&1 && [ $i -lt 600 ]; do sleep 0.5; i=$((i + 1)); done
    xl destroy "$name" 2> /dev/null
    sleep 1
    kill "$tailer"
    # Xen's view of a failed run (a guest that never came up, a crash).
    grep -q "^XENTEST $TYPE .* FAIL" $results && xl dmesg | tail -n 30
    grep -a '^XENTEST\|^XENTIME' "$log" | tr -d '\r' >> $results
done
# A Mirage unikernel for Solo5's xen target as a PVH domU, if the payload
# has one (VCHAN_RS_XEN_UNIKERNEL, test-xen.sh): ocaml-vchan's lib_test/mirage client
# over vchan-rs-xen. It finds its server through /conduit, connects to
# dom0's vchan-cat on port "flibble" and writes "num is N" every 5 s.
if [ -f $P/unikernel/client.exe ]; then
    name=xt-unikernel
    xenstore-write /conduit/foo_server 0
    xenstore-chmod -r /conduit b
    printf '%s\n' "name = \"$name\"" 'type = "pvh"' "kernel = \"$P/unikernel/client.exe\"" \
        'memory = 64' 'vcpus = 1' 'on_poweroff = "destroy"' 'on_crash = "preserve"' \
        'tsc_mode = "native"' 'cpuid = "host,rdtscp=0"' > /tmp/$name.cfg
    log=/var/log/xen/console/guest-$name.log
    start=$(cut -d' ' -f1 /proc/uptime)
    xl create -q /tmp/$name.cfg
    DOMU=$(xl domid "$name" 2> /dev/null)
    echo "xentest: $name is domain $DOMU"
    got=$(timeout 120 vchan-cat --backend xen -l "$DOMU" flibble | head -c 24)
    echo "xentest: unikernel: dom0's vchan-cat received: $got (after $(awk -v s="$start" '{ print $1 - s }' /proc/uptime) s)"
    if [ "$got" = "num is 0num is 1num is 2" ]; then
        echo "XENTEST unikernel client dom0 ok" | tee -a $results
    else
        echo "XENTEST unikernel client dom0 FAIL" | tee -a $results
    fi
    xl list
    echo "xentest: the unikernel's console:"
    sed "s/^/$name| /" "$log"
    xl dmesg | grep -v '^(XEN) *\(Xen\|Dom0\|Init\|Loaded\|Phys\|Start\|Page\|Boot\|TOTAL\|ENTRY\)' | tail -n 20
    xl destroy "$name" 2> /dev/null
fi
echo "XENTEST-RESULTS-BEGIN"
cat $results
echo "XENTEST-RESULTS-END"
sync
busybox poweroff -f
