//! The unix backend owns only what it made: the rendezvous directory
//! (refused when foreign, shared, a symlink, squatted; never chmod'ed),
//! sweeps that follow no symlink, block on no FIFO, skip what they do not
//! know and are never stopped by it, a root lock that cannot freeze us,
//! and the messages of bad settings (the bad-input table of the README).

mod common;

use common::*;
use std::ffi::CString;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use vchan::backend::unix::{self, MARKER};
use vchan::{Endpoint, Error, State, UnixBackend};

const T: Option<Duration> = Some(Duration::from_secs(20));

fn mkfifo(p: &Path) {
    let c = CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: c is NUL-terminated.
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
    assert_eq!(rc, 0, "mkfifo {p:?}");
}

fn mkdirs(p: &Path) {
    std::fs::create_dir_all(p).unwrap();
}

/// A snapshot of every entry below `dir`: path, mode, size, content.
fn snapshot(dir: &Path) -> Vec<(PathBuf, u32, Vec<u8>)> {
    let mut v: Vec<_> = walk_all(dir)
        .into_iter()
        .map(|p| {
            let m = std::fs::symlink_metadata(&p).unwrap();
            let content = if m.is_file() {
                std::fs::read(&p).unwrap()
            } else {
                Vec::new()
            };
            (p, m.mode(), content)
        })
        .collect();
    v.sort();
    v
}

fn unix_dir_err(r: vchan::Result<UnixBackend>) -> (PathBuf, String) {
    match r {
        Err(Error::UnixDir { path, why }) => (path, why),
        other => panic!("expected a rendezvous directory error, got {other:?}"),
    }
}

/// Issue 12, reproduction 1: an existing directory is neither chmod'ed nor
/// written into nor swept unless it is ours.
#[test]
fn foreign_directories_are_refused_and_left_untouched() {
    let base = private_tempdir();
    // World-readable (what /etc is), with files named like our objects.
    let etc = base.path().join("etc");
    mkdirs(&etc.join("gnt/0"));
    std::fs::write(etc.join("gnt/0/1234"), b"precious").unwrap();
    std::fs::write(etc.join("passwd"), b"root:x:0:0").unwrap();
    std::fs::set_permissions(&etc, std::fs::Permissions::from_mode(0o755)).unwrap();
    // Private but not ours (unmarked, not empty).
    let foreign = base.path().join("foreign");
    mkdirs(&foreign.join("store/local/domain/0/x"));
    std::fs::write(foreign.join("store/local/domain/0/x/event-channel"), b"5").unwrap();
    std::fs::write(foreign.join("notes"), b"mine").unwrap();
    std::fs::set_permissions(&foreign, std::fs::Permissions::from_mode(0o700)).unwrap();
    // Empty but group-writable.
    let shared = base.path().join("shared");
    mkdirs(&shared);
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o770)).unwrap();

    let before = snapshot(base.path());
    for (dir, says) in [
        (&etc, "accessible to other users (mode 0755)"),
        (&foreign, "not empty and was not made by vchan"),
        (&shared, "accessible to other users (mode 0770)"),
    ] {
        let (path, why) = unix_dir_err(UnixBackend::new(dir.clone(), dom(0)));
        assert_eq!(&path, dir);
        assert!(why.contains(says), "{why}");
        assert!(why.contains("VCHAN_UNIX_DIR"), "no fix named: {why}");
        let shown = Error::UnixDir { path, why }.to_string();
        assert!(shown.contains(&dir.display().to_string()), "{shown}");
        // Listening there fails the same way, and sweeping does nothing.
        assert!(unix::sweep(dir).is_err());
    }
    assert_eq!(snapshot(base.path()), before, "a refused directory changed");
}

/// A new directory is made 0700 with the marker; an empty private one is
/// adopted; a marked one is reused; the marker survives closes.
#[test]
fn own_directories_are_made_marked_and_reused() {
    let base = private_tempdir();
    let fresh = base.path().join("fresh");
    UnixBackend::new(fresh.clone(), dom(0)).unwrap();
    let m = std::fs::metadata(&fresh).unwrap();
    assert_eq!(m.mode() & 0o777, 0o700);
    assert!(fresh.join(MARKER).is_file());
    let empty = base.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    std::fs::set_permissions(&empty, std::fs::Permissions::from_mode(0o700)).unwrap();
    UnixBackend::new(empty.clone(), dom(0)).unwrap();
    assert!(empty.join(MARKER).is_file());
    // In use (not empty), but marked: reused.
    let mut s =
        Endpoint::listen_at(backend(&empty, 0), dom(1), &path(0, 1, "m"), 4096, 4096).unwrap();
    let mut c = Endpoint::connect_at(backend(&empty, 1), dom(0), &path(0, 1, "m"), T).unwrap();
    assert_eq!(s.accept(T).unwrap(), State::Connected);
    c.close().unwrap();
    s.close().unwrap();
    assert!(walk(&empty).is_empty(), "left: {:?}", walk(&empty));
    assert!(empty.join(MARKER).is_file());
}

/// Issue 12, reproduction 1 (symlinks): a `gnt` or `evtchn` symlink, or
/// symlinks inside them, planted in the tree make the sweep delete nothing
/// outside it.
#[test]
fn sweep_follows_no_symlink() {
    let base = private_tempdir();
    let root = base.path().join("v");
    UnixBackend::new(root.clone(), dom(0)).unwrap();
    let victim = base.path().join("victim");
    mkdirs(&victim.join("0"));
    for f in ["0/1", "0/2", "0/3.sock", "0/4.peer", "0/.tmp-1-1"] {
        std::fs::write(victim.join(f), b"keep").unwrap();
    }
    std::os::unix::fs::symlink(&victim, root.join("gnt")).unwrap();
    mkdirs(&root.join("evtchn"));
    std::os::unix::fs::symlink(victim.join("0"), root.join("evtchn/0")).unwrap();
    mkdirs(&root.join("store/local/domain/0/data/vchan/1"));
    std::os::unix::fs::symlink(&victim, root.join("store/local/domain/0/data/vchan/1/p")).unwrap();
    mkdirs(&root.join("store/local/domain/1"));
    std::os::unix::fs::symlink(
        victim.join("0/1"),
        root.join("store/local/domain/1/event-channel"),
    )
    .unwrap();
    let before = snapshot(&victim);
    unix::sweep(&root).unwrap();
    assert_eq!(
        snapshot(&victim),
        before,
        "the sweep reached outside the tree"
    );
    // Nor do endpoints: creating objects through the planted `gnt` and
    // `evtchn/0` symlinks is refused (a clean error), never done there.
    match Endpoint::listen_at(backend(&root, 0), dom(1), &path(0, 1, "q"), 4096, 4096) {
        Ok(mut s) => s.close().unwrap(),
        Err(e) => assert!(
            matches!(&e, Error::Io(io) if io.raw_os_error() == Some(libc::ENOTDIR)),
            "{e:?}"
        ),
    }
    // Once they are gone, the tree works again.
    std::fs::remove_file(root.join("gnt")).unwrap();
    std::fs::remove_file(root.join("evtchn/0")).unwrap();
    let mut s =
        Endpoint::listen_at(backend(&root, 0), dom(1), &path(0, 1, "q"), 4096, 4096).unwrap();
    s.close().unwrap();
    assert_eq!(
        snapshot(&victim),
        before,
        "the sweep reached outside the tree"
    );
}

/// Writing, reading and removing store nodes (a server's publish and
/// close, xensim's `xs_*`) follow no symlink planted above or at the node:
/// what it points to stays unread and unchanged.
#[test]
fn store_removal_follows_no_symlink() {
    let base = private_tempdir();
    let root = base.path().join("v");
    UnixBackend::new(root.clone(), dom(0)).unwrap();
    let victim = base.path().join("victim");
    mkdirs(&victim.join("domain/0/data/vchan/1/p"));
    std::fs::write(victim.join("domain/0/data/vchan/1/p/ring-ref"), b"8").unwrap();
    std::fs::write(victim.join("domain/0/data/vchan/1/keep"), b"x").unwrap();
    mkdirs(&root.join("store"));
    std::os::unix::fs::symlink(&victim, root.join("store/local")).unwrap();
    mkdirs(&root.join("store/other"));
    std::os::unix::fs::symlink(victim.join("domain"), root.join("store/other/q")).unwrap();
    let before = snapshot(&victim);
    // Writes and rendezvous below the symlink are refused, not made there.
    assert!(unix::store::write(&root, "/local/domain/0/data/vchan/1/x", b"v").is_err());
    let leaves: [(&str, &[u8]); 1] = [("ring-ref", b"9")];
    assert!(
        unix::store::create_dir_with(&root, "/local/domain/0/data/vchan/1/y", &leaves).is_err()
    );
    assert_eq!(
        unix::store::read(&root, "/local/domain/0/data/vchan/1/p/ring-ref").unwrap(),
        None
    );
    assert_eq!(
        snapshot(&victim),
        before,
        "a write reached outside the tree"
    );
    unix::store::rm(&root, "/local/domain/0/data/vchan/1/p").unwrap();
    unix::store::rm(&root, "/local/domain/0/data/vchan/1").unwrap();
    assert_eq!(
        snapshot(&victim),
        before,
        "removal reached outside the tree"
    );
    // The symlink itself, as the node, is removed (not what it points to).
    unix::store::rm(&root, "/other/q").unwrap();
    assert!(std::fs::symlink_metadata(root.join("store/other/q")).is_err());
    assert_eq!(
        snapshot(&victim),
        before,
        "removal reached outside the tree"
    );
}

/// Issue 12, reproduction 3: FIFOs planted where objects live block
/// nothing: sweeps, listen, connect and close of other pairs go on.
#[test]
fn fifos_block_nothing() {
    let dir = private_tempdir();
    let root = dir.path().to_path_buf();
    UnixBackend::new(root.clone(), dom(0)).unwrap();
    for d in ["gnt/0", "gnt/1", "evtchn/0", "evtchn/1"] {
        mkdirs(&root.join(d));
    }
    for f in [
        "gnt/0/12345",
        "gnt/1/.tmp-1-1",
        "evtchn/0/777",
        "evtchn/0/778.peer",
        "evtchn/1/779",
    ] {
        mkfifo(&root.join(f));
    }
    let rv = root.join("store/local/domain/0/data/vchan/1/f");
    mkdirs(&rv);
    mkfifo(&rv.join("event-channel"));
    mkfifo(&rv.join("ring-ref"));
    within(20, "sweep, listen, connect, close with FIFOs", move || {
        unix::sweep(&root).unwrap();
        // The FIFO'd rendezvous reads as "no server": a client waits (and
        // times out), it does not hang.
        let r = Endpoint::connect_at(
            backend(&root, 1),
            dom(0),
            &path(0, 1, "f"),
            Some(Duration::from_millis(300)),
        );
        assert!(r.is_err());
        let mut s =
            Endpoint::listen_at(backend(&root, 0), dom(1), &path(0, 1, "ok"), 4096, 4096).unwrap();
        let mut c = Endpoint::connect_at(backend(&root, 1), dom(0), &path(0, 1, "ok"), T).unwrap();
        assert_eq!(s.accept(T).unwrap(), State::Connected);
        c.write_all(b"through").unwrap();
        let mut b = [0u8; 7];
        std::io::Read::read_exact(&mut s, &mut b).unwrap();
        assert_eq!(&b, b"through");
        c.close().unwrap();
        s.close().unwrap();
    });
    // The FIFOs are not ours: still there.
    assert!(dir.path().join("gnt/0/12345").exists());
    assert!(dir.path().join("evtchn/0/777").exists());
}

/// Issue 12, reproduction 5: unexpected entries (a directory among the
/// shares, a file directly under `evtchn/`, foreign names) are skipped and
/// never stop the sweep: stale objects after them are still removed.
#[test]
fn unexpected_entries_do_not_stop_the_sweep() {
    let dir = private_tempdir();
    let root = dir.path();
    UnixBackend::new(root.to_path_buf(), dom(0)).unwrap();
    mkdirs(&root.join("gnt/0/42"));
    std::fs::write(root.join("gnt/0/README"), b"x").unwrap();
    std::fs::write(root.join("gnt/junk"), b"x").unwrap();
    mkdirs(&root.join("evtchn/0"));
    std::fs::write(root.join("evtchn/junk"), b"x").unwrap();
    mkdirs(&root.join("evtchn/0/55.peer"));
    // Stale objects (no owner holds their lock), swept after the above.
    mkdirs(&root.join("evtchn/7"));
    std::fs::write(root.join("evtchn/7/100"), b"").unwrap();
    std::fs::write(root.join("evtchn/7/100.peer"), b"").unwrap();
    mkdirs(&root.join("gnt/9"));
    std::fs::write(root.join("gnt/9/77"), b"").unwrap();
    unix::sweep(root).unwrap();
    assert!(!root.join("evtchn/7").exists(), "stale port left");
    assert!(!root.join("gnt/9").exists(), "stale share left");
    for kept in [
        "gnt/0/42",
        "gnt/0/README",
        "gnt/junk",
        "evtchn/junk",
        "evtchn/0/55.peer",
    ] {
        assert!(root.join(kept).exists(), "{kept} removed");
    }
}

/// Issue 12, reproduction 3 (the lock): a process holding the root's flock
/// gets a clear error within a bounded time, not a frozen endpoint.
#[test]
fn a_held_root_lock_does_not_freeze() {
    let dir = private_tempdir();
    let root = dir.path().to_path_buf();
    UnixBackend::new(root.clone(), dom(0)).unwrap();
    // Another open file description: its flock excludes ours.
    let holder = std::fs::File::open(&root).unwrap();
    // SAFETY: flock on our own descriptor.
    let rc = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&holder), libc::LOCK_EX) };
    assert_eq!(rc, 0);
    let started = Instant::now();
    let r = within(30, "listen with the root locked", move || {
        Endpoint::listen_at(backend(&root, 0), dom(1), &path(0, 1, "l"), 4096, 4096).map(|_| ())
    });
    let took = started.elapsed();
    match r {
        Err(Error::Io(e)) => {
            assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
            let msg = e.to_string();
            assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
            assert!(msg.contains("locked"), "{msg}");
        }
        other => panic!("expected a lock time-out, got {other:?}"),
    }
    assert!(took >= unix::ROOT_LOCK_WAIT, "gave up early: {took:?}");
    drop(holder);
    let mut s =
        Endpoint::listen_at(backend(dir.path(), 0), dom(1), &path(0, 1, "l"), 4096, 4096).unwrap();
    s.close().unwrap();
}

/// Child entry: open the backend from the environment, print the outcome.
#[test]
#[ignore = "child process entry point"]
fn env_child() {
    child_role();
    match UnixBackend::from_env() {
        Ok(b) => println!("ok={}", b.root().display()),
        Err(e) => println!("err={e}"),
    }
}

/// `env_child` with `env` (everything else vchan reads removed).
fn from_env(env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "env_child", "--ignored", "--nocapture", "-q"])
        .env(ROLE, "env")
        .env_remove("VCHAN_UNIX_DIR")
        .env_remove("VCHAN_DOMID")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("TMPDIR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines()
        .find(|l| l.starts_with("ok=") || l.starts_with("err="))
        .unwrap_or_else(|| panic!("no outcome in {text:?}"))
        .to_owned()
}

fn uid() -> u32 {
    // SAFETY: getuid cannot fail.
    unsafe { libc::getuid() }
}

/// A directory owned by another user: made and chown'ed when we are root,
/// else `/` (root's).
fn others_dir(base: &Path) -> PathBuf {
    if uid() != 0 {
        return PathBuf::from("/");
    }
    let d = base.join(format!("vchan-{}", uid()));
    std::fs::create_dir(&d).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&d, Some(65534), Some(65534)).unwrap();
    d
}

/// Issue 12, reproductions 4 and 9, and the bad-input table's settings:
/// each gives an error that names the variable or the path and the fix.
#[test]
fn bad_settings_are_named() {
    let base = private_tempdir();
    let b = base.path();
    let s = |p: &Path| p.display().to_string();
    std::fs::write(b.join("file"), b"x").unwrap();
    mkdirs(&b.join("world"));
    std::fs::set_permissions(b.join("world"), std::fs::Permissions::from_mode(0o777)).unwrap();
    mkdirs(&b.join("real"));
    std::os::unix::fs::symlink(b.join("real"), b.join("link")).unwrap();
    mkdirs(&b.join("foreign/sub"));
    std::fs::set_permissions(b.join("foreign"), std::fs::Permissions::from_mode(0o700)).unwrap();
    let others = others_dir(b);
    type Case<'a> = (Vec<(&'a str, String)>, Vec<String>);
    let cases: Vec<Case> = vec![
        (
            vec![("VCHAN_DOMID", "abc".into())],
            vec!["VCHAN_DOMID=\"abc\"".into(), "0..=32751".into()],
        ),
        (
            vec![("VCHAN_DOMID", "-1".into())],
            vec!["VCHAN_DOMID=\"-1\"".into()],
        ),
        (
            vec![("VCHAN_DOMID", "32752".into())],
            vec!["VCHAN_DOMID=\"32752\"".into()],
        ),
        (
            vec![("VCHAN_DOMID", "99999999999".into())],
            vec!["VCHAN_DOMID=\"99999999999\"".into()],
        ),
        // Decimal digits only, as on every command line.
        (
            vec![("VCHAN_DOMID", " 1".into())],
            vec!["VCHAN_DOMID=\" 1\"".into()],
        ),
        (
            vec![("VCHAN_DOMID", "+1".into())],
            vec!["VCHAN_DOMID=\"+1\"".into()],
        ),
        (
            vec![("VCHAN_UNIX_DIR", "/proc/none".into())],
            vec!["/proc/none".into(), "cannot create".into()],
        ),
        (
            vec![("VCHAN_UNIX_DIR", s(&b.join("missing/sub")))],
            vec![
                s(&b.join("missing/sub")),
                "parent directory does not exist".into(),
            ],
        ),
        (
            vec![("VCHAN_UNIX_DIR", s(&b.join("file")))],
            vec![s(&b.join("file")), "not a directory".into()],
        ),
        (
            vec![("VCHAN_UNIX_DIR", s(&b.join("world")))],
            vec![s(&b.join("world")), "mode 0777".into()],
        ),
        (
            vec![("VCHAN_UNIX_DIR", s(&b.join("link")))],
            vec![s(&b.join("link")), "symbolic link".into()],
        ),
        (
            vec![("VCHAN_UNIX_DIR", s(&b.join("foreign")))],
            vec![s(&b.join("foreign")), "not made by vchan".into()],
        ),
        (
            vec![("VCHAN_UNIX_DIR", s(&others))],
            vec![s(&others), "belongs to uid".into(), "not to us".into()],
        ),
    ];
    for (env, want) in cases {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let got = from_env(&env);
        assert!(got.starts_with("err="), "{env:?}: {got}");
        for w in want {
            assert!(got.contains(&w), "{env:?}: {got:?} lacks {w:?}");
        }
    }
    // The symlink was not followed into, nor the world-writable dir fixed.
    assert!(std::fs::read_dir(b.join("real")).unwrap().next().is_none());
    let mode = std::fs::metadata(b.join("world")).unwrap().mode() & 0o777;
    assert_eq!(mode, 0o777);
}

/// Issue 12, reproduction 4: the default directory (no VCHAN_UNIX_DIR nor
/// XDG_RUNTIME_DIR: `$TMPDIR/vchan-<uid>`) squatted by another user is
/// refused naming its owner and the fix; otherwise it is made and found by
/// both sides.
#[test]
fn squatted_default_directory_is_refused_naming_the_owner() {
    let base = private_tempdir();
    let tmp = base.path().join("tmp");
    mkdirs(&tmp);
    let t = tmp.display().to_string();
    let expect = tmp.join(format!("vchan-{}", uid()));
    assert_eq!(
        from_env(&[("TMPDIR", &t)]),
        format!("ok={}", expect.display())
    );
    std::fs::remove_file(expect.join(MARKER)).unwrap();
    std::fs::remove_dir(&expect).unwrap();
    if uid() == 0 {
        let squat = others_dir(&tmp);
        assert_eq!(squat, expect);
        let got = from_env(&[("TMPDIR", &t)]);
        assert!(got.contains(&expect.display().to_string()), "{got}");
        assert!(got.contains("belongs to uid 65534"), "{got}");
        assert!(got.contains("VCHAN_UNIX_DIR"), "{got}");
        assert!(got.contains("XDG_RUNTIME_DIR"), "{got}");
    } else {
        // Not root: squat with a directory we cannot own (root's /): the
        // same check, through XDG_RUNTIME_DIR=/ → `/vchan`... which we
        // cannot make either: its error names the path.
        let got = from_env(&[("XDG_RUNTIME_DIR", "/")]);
        assert!(got.contains("/vchan"), "{got}");
    }
    // XDG_RUNTIME_DIR wins over TMPDIR.
    let xdg = base.path().join("xdg");
    mkdirs(&xdg);
    assert_eq!(
        from_env(&[
            ("TMPDIR", &t),
            ("XDG_RUNTIME_DIR", &xdg.display().to_string())
        ]),
        format!("ok={}", xdg.join("vchan").display())
    );
}
