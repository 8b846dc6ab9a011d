//! The server's order choice against Xen's C rule, and client validation.

mod common;

use vchan_core::layout::Placement;
use vchan_core::{Error, Orders};

const GRID: [usize; 14] = [
    0,
    1,
    1023,
    1024,
    1025,
    2047,
    2048,
    2049,
    4095,
    4096,
    4097,
    65536,
    1 << 20,
    (1 << 20) + 1,
];

/// The rule of Xen 4.17's libxenvchan_server_init, in C.
const C_RULE: &str = r#"
#include <stdio.h>
#include <stddef.h>
static int min_order(size_t siz) { int rv = 12; while (siz > ((size_t)1 << rv)) rv++; return rv; }
static int choose(size_t left_min, size_t right_min, int *l, int *r) {
    if (left_min > (1 << 20) || right_min > (1 << 20)) return -1;
    *l = min_order(left_min); *r = min_order(right_min);
    if (left_min <= 1024 && right_min <= 2048) { *l = 10; *r = 11; }
    else if (left_min <= 2048 && right_min <= 1024) { *l = 11; *r = 10; }
    else if (left_min <= 2048) *l = 11;
    else if (right_min <= 2048) *r = 11;
    return 0;
}
int main(void) {
    size_t g[] = { GRID };
    for (size_t i = 0; i < sizeof g / sizeof *g; i++)
        for (size_t j = 0; j < sizeof g / sizeof *g; j++) {
            int l = 0, r = 0;
            if (choose(g[i], g[j], &l, &r)) printf("%zu %zu fail\n", g[i], g[j]);
            else printf("%zu %zu %d %d\n", g[i], g[j], l, r);
        }
    return 0;
}
"#;

#[test]
fn server_orders_match_c_rule() {
    let grid: Vec<String> = GRID.iter().map(|g| format!("{g}u")).collect();
    let src = C_RULE.replace("GRID", &grid.join(", "));
    let out = common::run_c("orders", &src);
    let mut n = 0;
    for line in out.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (l, r): (usize, usize) = (f[0].parse().unwrap(), f[1].parse().unwrap());
        let got = Orders::for_server(l, r);
        if f[2] == "fail" {
            assert!(
                matches!(got, Err(Error::RingTooLarge { .. })),
                "{l} {r}: {got:?}"
            );
        } else {
            let o = got.unwrap_or_else(|e| panic!("{l} {r}: {e}"));
            let want: (u8, u8) = (f[2].parse().unwrap(), f[3].parse().unwrap());
            assert_eq!((o.left(), o.right()), want, "read_min {l} write_min {r}");
            // The chosen rings really hold what was asked for.
            assert!(l <= 1 << o.left() && r <= 1 << o.right());
            // And the client accepts them.
            assert_eq!(Orders::validate(o.left().into(), o.right().into()), Ok(o));
        }
        n += 1;
    }
    assert_eq!(n, GRID.len() * GRID.len());
}

#[test]
fn client_validation() {
    for l in 0u16..=25 {
        for r in 0u16..=25 {
            let ok = (10..=20).contains(&l) && (10..=20).contains(&r) && !(l == r && l < 12);
            let got = Orders::validate(l, r);
            assert_eq!(got.is_ok(), ok, "{l}/{r}");
            if !ok {
                assert_eq!(got, Err(Error::BadOrders { left: l, right: r }));
                assert!(got.unwrap_err().is_protocol_violation());
            }
        }
    }
    for (l, r) in [(u16::MAX, 10), (10, 256 + 10), (256 + 12, 12)] {
        assert!(Orders::validate(l, r).is_err(), "{l}/{r}");
    }
}

#[test]
fn grants_and_placement() {
    let o = Orders::validate(20, 20).unwrap();
    assert_eq!(o.grant_count(), 512);
    assert_eq!(o.grant_range_left(), 0..256);
    assert_eq!(o.grant_range_right(), 256..512);
    let o = Orders::validate(10, 13).unwrap();
    assert_eq!(o.left_placement(), Placement::InPage { offset: 1024 });
    assert_eq!(o.right_placement(), Placement::Pages { count: 2 });
    assert_eq!(o.grant_range_right(), 0..2);
    let o = Orders::validate(11, 10).unwrap();
    assert_eq!(o.grant_count(), 0);
    assert_eq!(Placement::of_order(9), None);
    assert_eq!(Placement::of_order(21), None);
}
