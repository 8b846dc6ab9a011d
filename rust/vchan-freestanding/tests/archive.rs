//! The archive as a unikernel or a C program links it: built for
//! `x86_64-unknown-none` and for the host with the `freestanding` profile
//! (panic = "abort"), it must need nothing from outside but mem*/bcmp (and
//! the OCaml runtime's `caml_*`, of which it uses none today); its C header
//! must agree with the boundary; and a C program must move data both ways
//! through it over in-memory pages.
//!
//! Does not link the library itself (its panic handler would clash with
//! std's): it builds the archive with cargo and inspects it.

#[path = "../src/boundary.rs"]
#[allow(dead_code)]
mod boundary;
#[path = "../src/ocaml_boundary.rs"]
#[allow(dead_code)]
mod ocaml_boundary;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

const BARE: &str = "x86_64-unknown-none";

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// One cargo build in the test's target directory at a time.
static LOCK: Mutex<()> = Mutex::new(());

/// The target directory the tests build the archive in.
fn build_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("freestanding")
}

/// Build the staticlib (for `target`, or the host) and return its path.
fn archive(target: Option<&str>) -> PathBuf {
    let _one_at_a_time = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = build_dir();
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args([
        "rustc",
        "--quiet",
        "--locked",
        "-p",
        "vchan-freestanding",
        "--lib",
    ])
    .args(["--crate-type", "staticlib", "--profile", "freestanding"])
    .arg("--manifest-path")
    .arg(crate_dir().join("../../Cargo.toml"))
    .arg("--target-dir")
    .arg(&dir);
    if let Some(t) = target {
        cmd.args(["--target", t]);
    }
    let st = cmd.status().expect("run cargo");
    assert!(st.success(), "cargo rustc for {target:?} failed");
    let mut p = dir;
    if let Some(t) = target {
        p.push(t);
    }
    p.join("freestanding/libvchan_freestanding.a")
}

/// (undefined, defined) global symbols over all members of an archive,
/// from `readelf -sW` (binutils' nm misreads Rust 1.95 objects).
fn symbols(archive: &Path) -> (BTreeSet<String>, BTreeSet<String>) {
    let out = Command::new("readelf")
        .arg("-sW")
        .arg(archive)
        .output()
        .expect("run readelf");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let (mut und, mut def) = (BTreeSet::new(), BTreeSet::new());
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 || !f[0].ends_with(':') {
            continue;
        }
        let name = f[7].to_string();
        if f[6] == "UND" {
            und.insert(name);
        } else if f[4] == "GLOBAL" || f[4] == "WEAK" {
            def.insert(name);
        }
    }
    assert!(
        !def.is_empty(),
        "readelf found no symbols in {}",
        archive.display()
    );
    let needed = und.difference(&def).cloned().collect();
    (needed, def)
}

/// The functions the C header declares.
fn header_functions() -> Vec<String> {
    let h = std::fs::read_to_string(crate_dir().join("include/vchan_freestanding.h")).unwrap();
    let mut names = Vec::new();
    for line in h.lines() {
        if let Some(i) = line.find("vchan_fs_") {
            let rest = &line[i..];
            if let Some(j) = rest.find('(') {
                let name = &rest[..j];
                if name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !line.trim_start().starts_with("#define")
                    && !line.trim_start().starts_with('*')
                {
                    names.push(name.to_string());
                }
            }
        }
    }
    assert!(
        names.len() >= 20,
        "too few functions in the header: {names:?}"
    );
    names
}

fn check_archive(target: Option<&str>) {
    let a = archive(target);
    let (needed, defined) = symbols(&a);
    let allowed = |s: &str| {
        matches!(s, "memcpy" | "memmove" | "memset" | "memcmp" | "bcmp") || s.starts_with("caml_")
    };
    let extra: Vec<_> = needed.iter().filter(|s| !allowed(s)).collect();
    assert!(extra.is_empty(), "{target:?}: the archive needs {extra:?}");
    assert_defines_the_interface(target, &defined);
}

/// Every function of the C header and every OCaml external (and its
/// bytecode `_byte` stub) is defined.
fn assert_defines_the_interface(target: Option<&str>, defined: &BTreeSet<String>) {
    for f in header_functions() {
        assert!(defined.contains(&f), "{target:?}: {f} is not defined");
    }
    for e in boundary::EXTERNALS {
        for s in [e.symbol.to_string(), format!("{}_byte", e.symbol)] {
            assert!(
                defined.contains(&s),
                "{target:?}: external {s} is not defined"
            );
        }
    }
}

#[test]
fn bare_metal_archive_needs_only_mem_functions() {
    check_archive(Some(BARE));
}

#[test]
fn host_archive_needs_only_mem_functions() {
    check_archive(None);
}

/// The bare-metal archive as ocaml/dune ships it to a unikernel
/// (build-archive-bare.sh): one object that needs nothing and exports only
/// the C ABI, so that its compiler_builtins mem* (and intrinsics) cannot
/// replace the unikernel's C library's (docs/mirage.md).
#[test]
fn shipped_bare_archive_exports_only_its_c_abi() {
    let a = {
        let _one_at_a_time = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let dir = build_dir();
        let st = Command::new("bash")
            .arg(crate_dir().join("build-archive-bare.sh"))
            .arg(&dir)
            .status()
            .expect("run build-archive-bare.sh");
        assert!(st.success(), "build-archive-bare.sh failed");
        dir.join(format!(
            "release/freestanding-ocaml-{BARE}/libvchan_freestanding.a"
        ))
    };
    let (needed, defined) = symbols(&a);
    assert!(needed.is_empty(), "the shipped archive needs {needed:?}");
    let foreign: Vec<_> = defined
        .iter()
        .filter(|s| !s.starts_with("vchan_fs_"))
        .collect();
    assert!(
        foreign.is_empty(),
        "the shipped archive exports {foreign:?}"
    );
    assert_defines_the_interface(Some(BARE), &defined);
}

fn cc() -> Command {
    let mut c = Command::new("cc");
    c.args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(crate_dir().join("include"));
    c
}

#[test]
fn header_agrees_with_the_boundary() {
    let mut c = String::from("#include \"vchan_freestanding.h\"\n");
    let mut check = |expr: String| c.push_str(&format!("_Static_assert({expr}, \"{expr}\");\n"));
    check(format!("VCHAN_FS_STATE_SIZE == {}", boundary::STATE_SIZE));
    check(format!("VCHAN_FS_CLIENT == {}", boundary::CLIENT_FLAG));
    for code in boundary::CODES {
        check(format!(
            "VCHAN_FS_E_{} == {}",
            code.name.to_uppercase(),
            code.value
        ));
    }
    for (name, v) in boundary::STATES {
        check(format!("VCHAN_FS_STATE_{} == {v}", name.to_uppercase()));
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let src = dir.join("header_check.c");
    std::fs::write(&src, c).unwrap();
    let st = cc().arg("-fsyntax-only").arg(&src).status().unwrap();
    assert!(st.success(), "the header disagrees with src/boundary.rs");
}

#[test]
fn c_program_moves_data_both_ways() {
    let a = archive(None);
    let exe = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("two_pages");
    let st = cc()
        .arg("-O2")
        .arg(crate_dir().join("tests/c/two_pages.c"))
        .arg(&a)
        .arg("-o")
        .arg(&exe)
        .status()
        .unwrap();
    assert!(st.success(), "compiling tests/c/two_pages.c failed");
    let out = Command::new(&exe).output().unwrap();
    assert!(
        out.status.success(),
        "two_pages failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "two_pages: ok\n");
}
