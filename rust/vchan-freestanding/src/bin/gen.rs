//! `vchan-freestanding-gen`: print the OCaml side of the freestanding
//! archive's boundary (`ocaml/freestanding.ml`) from `src/boundary.rs`,
//! with the printer the Lwt Unix stubs use too (src/ocaml_boundary.rs).
//! Run by the dune rule of `ocaml/`. Does not link the library (its panic
//! handler is for freestanding code): it includes those two files only.

#[path = "../boundary.rs"]
#[allow(dead_code)]
mod boundary;
#[allow(dead_code)]
#[path = "../ocaml_boundary.rs"]
mod ocaml_boundary;

use boundary::{CLIENT_FLAG, CLIENT_LIVE, CODES, EXTERNALS, SERVER_LIVE, STATES, STATE_SIZE};
use ocaml_boundary::{write_ml, Const, Map, Module};

fn main() {
    let mut consts = vec![
        Const {
            name: "state_size",
            value: STATE_SIZE as i64,
            doc: "Bytes of state memory per endpoint.",
        },
        Const {
            name: "client_flag",
            value: CLIENT_FLAG as i64,
            doc: "Or'ed into packed orders for a client's [attach].",
        },
        Const {
            name: "server_live",
            value: SERVER_LIVE as i64,
            doc: "Offset of the server's live byte in the shared page.",
        },
        Const {
            name: "client_live",
            value: CLIENT_LIVE as i64,
            doc: "Offset of the client's live byte in the shared page.",
        },
    ];
    let names: Vec<String> = CODES.iter().map(|c| format!("e_{}", c.name)).collect();
    let docs: Vec<String> = CODES.iter().map(|c| format!("{}.", c.doc)).collect();
    for (i, c) in CODES.iter().enumerate() {
        consts.push(Const {
            name: &names[i],
            value: c.value as i64,
            doc: &docs[i],
        });
    }
    let states: Vec<String> = STATES.iter().map(|(n, _)| format!("state_{n}")).collect();
    for (i, (_, v)) in STATES.iter().enumerate() {
        consts.push(Const {
            name: &states[i],
            value: *v as i64,
            doc: "",
        });
    }
    let arms: Vec<(i64, &str)> = CODES.iter().map(|c| (c.value as i64, c.ocaml)).collect();
    let m = Module {
        generator: "vchan-freestanding-gen",
        source: "rust/vchan-freestanding/src/boundary.rs",
        doc: "The externals of the freestanding archive\n   \
              (rust/vchan-freestanding/src/ocaml.rs): [@@noalloc], never raising,\n   \
              returning a count or a negative code.",
        types: "type buffer = (char, Bigarray.int8_unsigned_elt, Bigarray.c_layout) Bigarray.Array1.t\n\
                type grants = (int32, Bigarray.int32_elt, Bigarray.c_layout) Bigarray.Array1.t\n",
        consts: &consts,
        maps: &[Map {
            head: "let error_of_code : int -> Error.t = function",
            arms: &arms,
            other: "n -> `System (Printf.sprintf \"vchan: unknown result code %d\" n)",
        }],
        externals: EXTERNALS,
    };
    let mut o = String::new();
    write_ml(&mut o, &m).expect("writing to a String");
    print!("{o}");
}
