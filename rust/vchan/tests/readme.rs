//! The README's Rust example is `examples/server.rs` word for word; it and
//! `examples/client.rs` run against each other as two processes (domains 0
//! and 1 of the unix backend); and the README's `Cargo.toml` block builds
//! the client as a project outside this workspace.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Every fenced ```` ```LANG ```` block of the README, with the file named
/// by the `<!-- file: NAME -->` line above it.
fn readme_blocks(lang: &str) -> Vec<(String, String)> {
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let text = std::fs::read_to_string(&readme).unwrap();
    let mut blocks = Vec::new();
    let mut name: Option<String> = None;
    let mut body: Option<String> = None;
    for line in text.lines() {
        if let Some(b) = body.as_mut() {
            if line.starts_with("```") {
                let file = name
                    .take()
                    .expect("a rust block without <!-- file: NAME -->");
                blocks.push((file, body.take().unwrap()));
            } else {
                b.push_str(line);
                b.push('\n');
            }
        } else if let Some(n) = line
            .strip_prefix("<!-- file: ")
            .and_then(|l| l.strip_suffix(" -->"))
        {
            name = Some(n.to_owned());
        } else if line.strip_prefix("```") == Some(lang) {
            body = Some(String::new());
        } else if line.starts_with("```") {
            name = None;
        }
    }
    blocks
}

#[test]
fn readme_rust_blocks_are_the_examples() {
    let blocks = readme_blocks("rust");
    let names: Vec<&str> = blocks.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["examples/server.rs"]);
    for (name, body) in &blocks {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
        let want = std::fs::read_to_string(&file).unwrap();
        assert_eq!(
            body,
            &want,
            "README block {name} differs from {}",
            file.display()
        );
    }
}

/// `<target>/<profile>/examples/<name>`. `cargo test` builds examples
/// only when it builds every target, so build them here (a no-op when up
/// to date), in this test's own profile and target directory.
fn example(name: &str) -> PathBuf {
    static BUILT: std::sync::Once = std::sync::Once::new();
    let exe = std::env::current_exe().unwrap();
    let profile = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    BUILT.call_once(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
        let mut c = Command::new(cargo);
        c.args(["build", "--locked", "--quiet", "-p", "vchan", "--examples"])
            .arg("--manifest-path")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
            .arg("--target-dir")
            .arg(profile.parent().unwrap());
        if profile.file_name().is_some_and(|n| n == "release") {
            c.arg("--release");
        }
        let st = c.status().expect("run cargo");
        assert!(st.success(), "cargo build --examples: {st:?}");
    });
    profile.join("examples").join(name)
}

#[test]
fn readme_examples_talk() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, domid: &str| {
        Command::new(example(name))
            .env("VCHAN_BACKEND", "unix")
            .env("VCHAN_UNIX_DIR", dir.path().join("rv"))
            .env("VCHAN_DOMID", domid)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let server = run("server", "0");
    let client = run("client", "1");
    let c = client.wait_with_output().unwrap();
    let s = server.wait_with_output().unwrap();
    assert!(c.status.success() && s.status.success(), "{c:?} {s:?}");
    assert_eq!(String::from_utf8_lossy(&c.stdout), "client got: hello\n");
    assert_eq!(String::from_utf8_lossy(&s.stdout), "server got: HELLO\n");
}

/// The README's `Cargo.toml` lines, under a `[package]` of a project beside
/// a checkout named `vchan-rs` (as the README's path assumes), build
/// `examples/client.rs` as that project's program, offline, with this
/// workspace's `Cargo.lock` as its starting point.
#[test]
fn readme_cargo_toml_builds_outside_the_workspace() {
    let blocks = readme_blocks("toml");
    let names: Vec<&str> = blocks.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["Cargo.toml"]);
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest.join("../..").canonicalize().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(&root, dir.path().join("vchan-rs")).unwrap();
    let app = dir.path().join("app");
    std::fs::create_dir_all(app.join("src")).unwrap();
    std::fs::write(
        app.join("Cargo.toml"),
        format!(
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n{}",
            blocks[0].1
        ),
    )
    .unwrap();
    std::fs::copy(root.join("Cargo.lock"), app.join("Cargo.lock")).unwrap();
    std::fs::copy(manifest.join("examples/client.rs"), app.join("src/main.rs")).unwrap();
    let exe = std::env::current_exe().unwrap();
    let target = exe
        .parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .unwrap();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let out = Command::new(cargo)
        .args(["build", "--offline", "--quiet"])
        .arg("--target-dir")
        .arg(target.join("readme-app"))
        .current_dir(&app)
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "cargo build of the README's Cargo.toml: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
