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

use boundary::{CODES, CONSTANTS, ERRNOS, EXTERNALS, KINDS, STATES};
use ocaml_boundary::{write_ml, Const, Map, Module};

fn main() {
    let codes: Vec<String> = CODES.iter().map(|(n, _)| format!("e_{n}")).collect();
    let states: Vec<String> = STATES.iter().map(|(n, _)| format!("state_{n}")).collect();
    let named = |names: &'static [(&str, isize)], prefixed: &[String]| -> Vec<(String, i64)> {
        names
            .iter()
            .zip(prefixed)
            .map(|((_, v), n)| (n.clone(), *v as i64))
            .collect()
    };
    let mut values = named(CODES, &codes);
    values.extend(named(STATES, &states));
    values.extend(CONSTANTS.iter().map(|(n, v)| (n.to_string(), *v)));
    let consts: Vec<Const> = values
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
        doc: "The stubs of vchan-rs-unix. A handle is the address of a Rust\n   \
              Box<Handle>, as an int, owned by the bigarray [ring] returns. Data-path\n   \
              externals are [@@noalloc] over untagged ints; they never block,\n   \
              allocate or raise, and return a count or a negative code. The epoll\n   \
              engine's externals return 0 or more, or -errno.",
        types: "type handle = int\n",
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
