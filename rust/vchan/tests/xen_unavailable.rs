//! The xen backend without a hypervisor: asking for it is a clear error
//! (`Error::BackendUnavailable`), never a crash nor a hang. On this kind of
//! machine Xen's libraries may well be installed (Debian's libxen-dev):
//! then loading succeeds and opening xenstore or the devices fails.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};
use vchan_test_support::kill;

use common::{child_role, dom, port, skip};
use vchan::{Endpoint, Error};

/// How long a child may take to fail.
const LIMIT: Duration = Duration::from_secs(20);

#[test]
fn backend_named_xen_is_unavailable_without_a_hypervisor() {
    if std::path::Path::new("/dev/xen").exists() {
        return skip("/dev/xen exists: this is a Xen domain, where the xen backend may open");
    }
    match vchan::backend_named("xen") {
        Err(Error::BackendUnavailable(why)) => {
            eprintln!("xen backend unavailable, as expected: {why}");
            // With Debian's real libraries installed, every symbol resolved
            // and the failure comes from connecting to xenstore.
            let system = Path::new("/usr/lib/x86_64-linux-gnu");
            if ["libxengnttab.so.1", "libxenevtchn.so.1", "libxenstore.so.4"]
                .iter()
                .all(|l| system.join(l).exists())
                && std::env::var_os("LD_LIBRARY_PATH").is_none()
            {
                assert!(why.starts_with("xs_open failed"), "{why}");
            } else {
                assert!(!why.is_empty());
            }
        }
        Err(e) => panic!("expected BackendUnavailable, got {e:?}"),
        Ok(b) => panic!("the xen backend opened without Xen ({})", b.name()),
    }
}

/// Child: listen and connect with `VCHAN_BACKEND=xen`; print what each
/// returned.
#[test]
#[ignore = "child process of endpoints_fail_cleanly_with_vchan_backend_xen"]
fn child_xen_endpoints() {
    child_role();
    let describe = |r: vchan::Result<Endpoint>| match r {
        Ok(_) => "ok".to_owned(),
        Err(Error::BackendUnavailable(_)) => "unavailable".to_owned(),
        Err(e) => format!("other:{e:?}"),
    };
    let l = Endpoint::listen(dom(1), &port("xenunavail"), 4096, 4096);
    if let Err(e) = &l {
        eprintln!("listen: {e}");
    }
    println!("listen={}", describe(l));
    let c = Endpoint::connect(dom(0), &port("xenunavail"), Some(Duration::from_secs(2)));
    if let Err(e) = &c {
        eprintln!("connect: {e}");
    }
    println!("connect={}", describe(c));
}

#[test]
fn endpoints_fail_cleanly_with_vchan_backend_xen() {
    if std::path::Path::new("/dev/xen").exists() {
        return skip("/dev/xen exists: this is a Xen domain, where the xen backend may open");
    }
    let dir = common::private_tempdir();
    let mut child = common::spawn(
        "child_xen_endpoints",
        "xen",
        0,
        dir.path(),
        &[("VCHAN_BACKEND", "xen".to_owned())],
    );
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t.elapsed() > LIMIT {
            kill(&mut child);
            panic!("the child hung for {LIMIT:?} with VCHAN_BACKEND=xen");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "the child crashed: {status:?}");
    let mut out = String::new();
    use std::io::Read;
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(out.contains("listen=unavailable"), "child printed {out:?}");
    assert!(out.contains("connect=unavailable"), "child printed {out:?}");
}

/// Child: the backend's error text.
#[test]
#[ignore = "child process of a missing_symbol test"]
fn child_xen_backend_error() {
    child_role();
    match vchan::backend_named("xen") {
        Err(Error::BackendUnavailable(why)) => println!("unavailable={why}"),
        Err(e) => println!("other={e:?}"),
        Ok(_) => println!("ok=opened"),
    }
}

/// A `libxenstore.so.4` that lacks Xen's functions (here: libm under that
/// name) makes the backend unavailable with dlerror's text naming the
/// first missing symbol.
#[test]
fn a_library_without_the_symbols_is_reported_not_called() {
    let Some(libm) = [
        "/lib/x86_64-linux-gnu/libm.so.6",
        "/usr/lib/x86_64-linux-gnu/libm.so.6",
    ]
    .into_iter()
    .map(std::path::Path::new)
    .find(|p| p.exists()) else {
        return skip("no libm.so.6 found to stand in for a library without Xen's symbols");
    };
    let dir = common::private_tempdir();
    let libs = dir.path().join("libs");
    std::fs::create_dir(&libs).unwrap();
    std::os::unix::fs::symlink(libm, libs.join("libxenstore.so.4")).unwrap();
    // Also hide the other two, should the system lack them: libm again.
    for name in ["libxengnttab.so.1", "libxenevtchn.so.1"] {
        if !["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu"]
            .iter()
            .any(|d| std::path::Path::new(d).join(name).exists())
        {
            std::os::unix::fs::symlink(libm, libs.join(name)).unwrap();
        }
    }
    let child = common::spawn(
        "child_xen_backend_error",
        "xen",
        0,
        dir.path(),
        &[
            ("VCHAN_BACKEND", "xen".to_owned()),
            ("LD_LIBRARY_PATH", libs.display().to_string()),
        ],
    );
    let v = common::child_values(child);
    let why = v
        .get("unavailable")
        .unwrap_or_else(|| panic!("child: {v:?}"));
    assert!(why.contains("undefined symbol"), "unexpected text: {why}");
    eprintln!("reported: {why}");
}

/// Child: a test that cannot run here.
#[test]
#[ignore = "child process of skipping_fails_unless_allowed"]
fn child_skip() {
    child_role();
    skip("this machine lacks what the test needs");
}

/// `skip` fails the test, saying why and how to allow skipping, unless
/// `VCHAN_TEST_ALLOW_SKIP=1`; then the test passes and says it skipped.
#[test]
fn skipping_fails_unless_allowed() {
    let dir = common::private_tempdir();
    // The value is always passed, so our own environment cannot leak in
    // (an empty value is as good as none: only "1" allows).
    let run = |allow: &str| {
        let extra = [(common::ALLOW_SKIP, allow.to_owned())];
        let mut child = common::spawn("child_skip", "skip", 0, dir.path(), &extra);
        // (stderr is inherited: the test's own output shows what was said.)
        child.wait().unwrap().success()
    };
    assert!(!run(""), "a skip without VCHAN_TEST_ALLOW_SKIP passed");
    assert!(!run("0"), "a skip with VCHAN_TEST_ALLOW_SKIP=0 passed");
    assert!(run("1"), "a skip with VCHAN_TEST_ALLOW_SKIP=1 failed");
}
