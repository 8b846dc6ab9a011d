//! The shared page layout, checked against Xen's own C header
//! (`/usr/include/xen/io/libxenvchan.h`, Debian `libxen-dev`): a C program
//! compiled at test time prints every offset and size.

mod common;

use std::collections::BTreeMap;

use vchan_core::layout::*;

const PROG: &str = r#"
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <xen/io/libxenvchan.h>

#define V ((struct vchan_interface *)0)
/* name offset size unsigned */
#define F(name, field) printf("%s %zu %zu %d\n", name, offsetof(struct vchan_interface, field), \
                              sizeof(V->field), (__typeof__(V->field))-1 > 0)

int main(void) {
    F("left.cons", left.cons);
    F("left.prod", left.prod);
    F("right.cons", right.cons);
    F("right.prod", right.prod);
    F("left_order", left_order);
    F("right_order", right_order);
    F("cli_live", cli_live);
    F("srv_live", srv_live);
    F("cli_notify", cli_notify);
    F("srv_notify", srv_notify);
    F("grants", grants[0]);
    printf("sizeof_vchan_interface %zu 0 0\n", sizeof(struct vchan_interface));
    printf("sizeof_ring_shared %zu 0 0\n", sizeof(struct ring_shared));
    printf("ring_shared.cons %zu 0 0\n", offsetof(struct ring_shared, cons));
    printf("ring_shared.prod %zu 0 0\n", offsetof(struct ring_shared, prod));
    printf("VCHAN_NOTIFY_WRITE %d 0 0\n", (int)VCHAN_NOTIFY_WRITE);
    printf("VCHAN_NOTIFY_READ %d 0 0\n", (int)VCHAN_NOTIFY_READ);
    return 0;
}
"#;

/// (value, size, unsigned) per name, as printed by the C program.
fn c_layout() -> BTreeMap<String, (usize, usize, bool)> {
    let out = common::run_c("c_header", PROG);
    let mut m = BTreeMap::new();
    for line in out.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f.len(), 4, "malformed line from the C program: {line:?}");
        let num = |s: &str| -> usize {
            s.parse()
                .unwrap_or_else(|_| panic!("bad number in {line:?}"))
        };
        let prev = m.insert(f[0].to_owned(), (num(f[1]), num(f[2]), f[3] == "1"));
        assert!(prev.is_none(), "duplicate line {line:?}");
    }
    m
}

#[test]
fn layout_matches_xen_header() {
    let c = c_layout();
    // (name, offset in our layout, size, unsigned)
    let fields: &[(&str, usize, usize)] = &[
        ("left.cons", LEFT_CONS, 4),
        ("left.prod", LEFT_PROD, 4),
        ("right.cons", RIGHT_CONS, 4),
        ("right.prod", RIGHT_PROD, 4),
        ("left_order", LEFT_ORDER, 2),
        ("right_order", RIGHT_ORDER, 2),
        ("cli_live", CLI_LIVE, 1),
        ("srv_live", SRV_LIVE, 1),
        ("cli_notify", CLI_NOTIFY, 1),
        ("srv_notify", SRV_NOTIFY, 1),
        ("grants", GRANTS, 4),
    ];
    for &(name, off, size) in fields {
        let got = c
            .get(name)
            .unwrap_or_else(|| panic!("the C program printed no {name}"));
        assert_eq!(*got, (off, size, true), "{name}: (offset, size, unsigned)");
    }
    let val = |name: &str| {
        c.get(name)
            .unwrap_or_else(|| panic!("the C program printed no {name}"))
            .0
    };
    // The header is exactly the fixed fields; grants[] is a flexible array.
    assert_eq!(val("sizeof_vchan_interface"), GRANTS);
    assert_eq!(val("sizeof_ring_shared"), 8);
    assert_eq!(val("ring_shared.cons"), 0);
    assert_eq!(val("ring_shared.prod"), 4);
    assert_eq!(val("VCHAN_NOTIFY_WRITE"), usize::from(NOTIFY_WRITE));
    assert_eq!(val("VCHAN_NOTIFY_READ"), usize::from(NOTIFY_READ));
    assert_eq!(c.len(), fields.len() + 6, "unexpected extra output: {c:?}");
}

#[test]
fn derived_constants() {
    assert_eq!(PAGE_SIZE, 1 << PAGE_SHIFT);
    assert_eq!(MAX_GRANTS, 1018);
    assert_eq!(GRANTS + 4 * MAX_GRANTS, PAGE_SIZE);
    // The order-10 ring fills bytes 1024..2048, the order-11 ring the rest.
    assert_eq!(SMALL_RING_OFFSET + (1 << MIN_ORDER), LARGE_RING_OFFSET);
    assert_eq!(LARGE_RING_OFFSET + (1 << LARGE_IN_PAGE_ORDER), PAGE_SIZE);
    assert_eq!(MAX_RING_SIZE, 1 << 20);
    // Order 20 both ways needs 512 grant refs, which fit (MAX_GRANTS 1018).
    assert_eq!(2 * (MAX_RING_SIZE / PAGE_SIZE), 512);
    assert_eq!((LIVE_EXITED, LIVE_CONNECTED, LIVE_WAITING), (0, 1, 2));
}
