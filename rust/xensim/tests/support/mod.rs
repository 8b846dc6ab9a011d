//! Build products the xensim tests run on, made once per test process:
//! the four simulated Xen libraries and the C test peer.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// `<target>/release`, from this test binary's path
/// (`<target>/release/deps/<test>-<hash>`).
pub fn release_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_path_buf()
}

/// xensim's library directory (`<target>/release/xensim`), built and linked
/// on first use. Cargo does not build a `staticlib` for integration tests
/// (and the archives under `deps/` carry hashes, so which is current is not
/// knowable from their names): run `cargo build --release --locked -p
/// xensim` (a no-op when up to date), which writes the one
/// `release/libxensim.a`, and `scripts/link-xensim.sh` over it.
pub fn xensim_dir() -> PathBuf {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let release = release_dir();
        let target = release.parent().ok_or("no target directory")?;
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
        let st = Command::new(cargo)
            .args(["build", "--release", "--locked", "-p", "xensim"])
            .arg("--manifest-path")
            .arg(root.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(target)
            .status()
            .map_err(|e| format!("cargo: {e}"))?;
        if !st.success() {
            return Err(format!("cargo build --release -p xensim: {st:?}"));
        }
        let script = root.join("scripts/link-xensim.sh");
        let st = Command::new("bash")
            .arg(&script)
            .arg(target)
            .status()
            .map_err(|e| format!("bash: {e}"))?;
        if !st.success() {
            return Err(format!("{} failed: {st:?}", script.display()));
        }
        let dir = release.join("xensim");
        for lib in [
            "libxensim.so",
            "libxengnttab.so.1",
            "libxenevtchn.so.1",
            "libxenstore.so.4",
            "libxenctrl.so.4.17",
        ] {
            if !dir.join(lib).exists() {
                return Err(format!("{} missing", dir.join(lib).display()));
            }
        }
        Ok(dir)
    });
    dir.clone().unwrap_or_else(|e| panic!("xensim: {e}"))
}

/// The C test peer (`tests/c/xvchan.c` on Debian's libxenvchan), compiled
/// once per test process into `<target>/release/xensim-tests/` (to a
/// temporary name, then renamed: a concurrent run never sees half a file).
pub fn xvchan() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/xvchan.c");
        let dir = release_dir().join("xensim-tests");
        std::fs::create_dir_all(&dir).unwrap();
        let bin = dir.join("xvchan");
        let tmp = dir.join(format!(".xvchan-{}", std::process::id()));
        let st = Command::new("cc")
            .args(["-O2", "-Wall", "-Werror", "-o"])
            .arg(&tmp)
            .arg(&src)
            .arg("-lxenvchan")
            .status()
            .expect("run cc");
        assert!(
            st.success(),
            "cc {} -lxenvchan failed: {st:?}",
            src.display()
        );
        std::fs::rename(&tmp, &bin).expect("install xvchan");
        bin
    })
    .clone()
}
