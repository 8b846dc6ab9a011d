//! Targets over the vchan crate's unix backend: `store` (its path parser)
//! and `names` (ports, domain ids, share files).

use std::path::Path;
use vchan::backend::unix::{gnt, store};
use vchan::{DomId, Port};

use crate::input::Input;

/// The store's path parser: any accepted xenstore path maps below
/// `<root>/store`, with no `.`, `..`, empty or temporary component.
pub fn store_paths(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let root = Path::new("/r");
    if let Ok(p) = store::node_path(root, s) {
        let rel = p.strip_prefix("/r/store").expect("below the store");
        for c in rel.components() {
            match c {
                std::path::Component::Normal(n) => {
                    let n = n.to_str().expect("UTF-8");
                    assert!(!n.is_empty() && !n.starts_with(".tmp-"), "{s:?}");
                }
                other => panic!("{s:?} gave {other:?}"),
            }
        }
        assert!(s.starts_with('/'));
    }
}

/// Port names, domain ids and the share files' text: what is accepted is
/// exactly what the rules say, and round-trips.
pub fn names(data: &[u8]) {
    let mut inp = Input::new(data);
    let kind = inp.u8();
    let rest = inp.bytes(usize::MAX);
    match kind % 3 {
        0 => {
            let Ok(s) = std::str::from_utf8(rest) else {
                return;
            };
            let ok = !s.is_empty()
                && s.len() <= vchan::MAX_PORT_LEN
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            match Port::new(s) {
                Ok(p) => {
                    assert!(ok, "{s:?} accepted");
                    assert_eq!(p.as_str(), s);
                }
                Err(e) => {
                    assert!(!ok, "{s:?} refused");
                    assert!(e.to_string().contains("invalid vchan port"));
                }
            }
        }
        1 => {
            let Ok(s) = std::str::from_utf8(rest) else {
                return;
            };
            match s.parse::<DomId>() {
                Ok(d) => {
                    assert!(d.get() < vchan::DOMID_FIRST_RESERVED);
                    assert_eq!(s.parse::<u32>().ok(), Some(d.get()));
                }
                Err(e) => assert!(e.to_string().contains(&format!("{s:?}")), "{e}"),
            }
        }
        _ => {
            if let Some(p) = gnt::parse_published(rest) {
                assert!(p.pid > 0 && (1..=gnt::MAX_SHARE_PAGES).contains(&p.pages));
                let text = format!("memfd {} {} {} {}\n", p.pid, p.fd, p.ino, p.pages);
                assert_eq!(gnt::parse_published(text.as_bytes()), Some(p));
            }
        }
    }
}
