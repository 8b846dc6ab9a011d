//! The shared page layout, checked against Xen's own C header.

mod common;

use vchan_core::layout::*;

#[test]
fn layout_matches_xen_header() {
    let out = common::run_c(
        "c_header",
        r#"
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <xen/io/libxenvchan.h>
#define F(name, field) printf(name " %zu %zu\n", offsetof(struct vchan_interface, field), sizeof(((struct vchan_interface *)0)->field))
int main(void) {
    F("left.cons", left.cons);   F("left.prod", left.prod);
    F("right.cons", right.cons); F("right.prod", right.prod);
    F("left_order", left_order); F("right_order", right_order);
    F("cli_live", cli_live);     F("srv_live", srv_live);
    F("cli_notify", cli_notify); F("srv_notify", srv_notify);
    printf("grants %zu %zu\n", offsetof(struct vchan_interface, grants), sizeof(uint32_t));
    printf("ring_shared %zu 0\n", sizeof(struct ring_shared));
    printf("NOTIFY_WRITE %d 0\nNOTIFY_READ %d 0\n", VCHAN_NOTIFY_WRITE, VCHAN_NOTIFY_READ);
    return 0;
}
"#,
    );
    let expect: &[(&str, usize, usize)] = &[
        ("left.cons", LEFT_CONS, 4),
        ("left.prod", LEFT_PROD, 4),
        ("right.cons", RIGHT_CONS, 4),
        ("right.prod", RIGHT_PROD, 4),
        ("left_order", LEFT_ORDER, 2),
        ("right_order", RIGHT_ORDER, 2),
        ("cli_live", CLI_LIVE, 1),
        ("cli_notify", CLI_NOTIFY, 1),
        ("srv_live", SRV_LIVE, 1),
        ("srv_notify", SRV_NOTIFY, 1),
        ("grants", GRANTS, 4),
        ("ring_shared", 8, 0),
        ("NOTIFY_WRITE", NOTIFY_WRITE as usize, 0),
        ("NOTIFY_READ", NOTIFY_READ as usize, 0),
    ];
    let mut seen = 0;
    for line in out.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (off, size): (usize, usize) = (f[1].parse().unwrap(), f[2].parse().unwrap());
        let (_, e_off, e_size) = expect
            .iter()
            .find(|(n, _, _)| *n == f[0])
            .unwrap_or_else(|| panic!("unexpected line {line}"));
        assert_eq!((off, size), (*e_off, *e_size), "{}", f[0]);
        seen += 1;
    }
    assert_eq!(seen, expect.len());
    assert_eq!(MAX_GRANTS, (PAGE_SIZE - GRANTS) / 4);
}
