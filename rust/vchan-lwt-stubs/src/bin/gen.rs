//! `vchan-lwt-stubs-gen`: print `ocaml/lwt-unix/stubs.ml`, the OCaml side
//! of these stubs, from the tables of src/boundary.rs (result codes, peer
//! states, error kinds, the epoll engine's values and errnos, every
//! external), with the printer `vchan-freestanding-gen` uses too
//! (rust/vchan-freestanding/src/ocaml_boundary.rs). Run by
//! ocaml/lwt-unix/dune. Does not link the stubs library (it needs the OCaml
//! runtime): it includes those two files only.

#[path = "../boundary.rs"]
#[allow(dead_code)]
mod boundary;
#[path = "../../../vchan-freestanding/src/ocaml_boundary.rs"]
#[allow(dead_code)]
mod ocaml_boundary;

use boundary::{CONSTANTS, ERRNOS, EXTERNALS, KINDS};
use ocaml_boundary::{write_ml, Const, Map, Module};

fn main() {
    let consts: Vec<Const> = CONSTANTS
        .iter()
        .map(|(name, value)| Const {
            name,
            value: *value,
            doc: "",
        })
        .collect();
    let m = Module {
        generator: "vchan-lwt-stubs-gen",
        source: "rust/vchan-lwt-stubs/src/boundary.rs",
        doc: "The stubs of vchan-rs-unix: the plumbing of the endpoint (a [chan]\n   \
              is the address of a Rust event channel, a [region] that of shared\n   \
              memory until the bigarray [region_buf] returns owns it) and the epoll\n   \
              engine's system calls ([@@noalloc] over untagged ints, returning 0\n   \
              or more, or -errno).",
        types: "type chan = int\ntype region = int\n",
        consts: &consts,
        maps: &[
            Map {
                head: "(* A (kind, message) pair of the control-path stubs. *)\n\
                       let error_of_kind ((kind, msg) : int * string) : Vchan_rs.Error.t =\n  \
                       match kind with",
                arms: KINDS,
                other: "_ -> `System msg",
            },
            Map {
                head: "let unix_error_of_errno = function",
                arms: ERRNOS,
                other: "n -> Unix.EUNKNOWNERR n",
            },
        ],
        externals: EXTERNALS,
    };
    let mut o = String::new();
    write_ml(&mut o, &m).expect("writing to a String");
    print!("{o}");
}
