//! In-process smoke test: a server and a client thread over the unix backend.

use std::sync::Arc;
use std::time::Duration;
use vchan::{Backend, DomId, Endpoint, State, UnixBackend};

mod common;
use common::walk;

fn backends(dir: &std::path::Path) -> (Arc<dyn Backend>, Arc<dyn Backend>) {
    let s = UnixBackend::new(dir.to_path_buf(), DomId::new(0).unwrap()).unwrap();
    let c = UnixBackend::new(dir.to_path_buf(), DomId::new(1).unwrap()).unwrap();
    (Arc::new(s), Arc::new(c))
}

#[test]
fn hello_both_ways_and_clean_close() {
    let dir = common::private_tempdir();
    let (sb, cb) = backends(dir.path());
    let path = "/local/domain/0/data/vchan/1/smoke";
    for (rmin, wmin) in [(1024, 2048), (2048, 1024), (4096, 4096), (65536, 1 << 20)] {
        let mut server =
            Endpoint::listen_at(sb.clone(), DomId::new(1).unwrap(), path, rmin, wmin).unwrap();
        let cb2 = cb.clone();
        let t = std::thread::spawn(move || {
            let mut c = Endpoint::connect_at(
                cb2,
                DomId::new(0).unwrap(),
                path,
                Some(Duration::from_secs(5)),
            )
            .unwrap();
            let mut total = 0u64;
            let mut buf = vec![0u8; 10000];
            loop {
                let n = c.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                total += buf[..n].iter().map(|&b| b as u64).sum::<u64>();
                c.write_all(&buf[..n]).unwrap();
            }
            total
        });
        assert_eq!(
            server.accept(Some(Duration::from_secs(5))).unwrap(),
            State::Connected
        );
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let expect: u64 = data.iter().map(|&b| b as u64).sum();
        let mut back = Vec::new();
        let mut buf = vec![0u8; 8192];
        let mut off = 0;
        while back.len() < data.len() {
            if off < data.len() {
                server.set_nonblocking(true);
                match server.write(&data[off..]) {
                    Ok(n) => off += n,
                    Err(vchan::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => panic!("{e}"),
                }
                match server.read(&mut buf) {
                    Ok(n) => back.extend_from_slice(&buf[..n]),
                    Err(vchan::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => panic!("{e}"),
                }
            } else {
                server.set_nonblocking(false);
                let n = server.read(&mut buf).unwrap();
                back.extend_from_slice(&buf[..n]);
            }
        }
        assert_eq!(back, data);
        server.close().unwrap();
        assert_eq!(t.join().unwrap(), expect);
    }
    let left: Vec<_> = walk(dir.path());
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// In non-blocking mode an operation must not consume the event another
/// operation is waiting for: a write blocked on a full ring stays wakeable
/// through the descriptor even after a read on the same endpoint would block.
#[test]
fn nonblocking_ops_do_not_swallow_each_others_wakeups() {
    use std::os::fd::AsRawFd;
    let dir = common::private_tempdir();
    let (sb, cb) = backends(dir.path());
    let path = "/local/domain/0/data/vchan/1/wake";
    let mut server = Endpoint::listen_at(sb, DomId::new(1).unwrap(), path, 4096, 4096).unwrap();
    let mut client = Endpoint::connect_at(cb, DomId::new(0).unwrap(), path, None).unwrap();
    server.set_nonblocking(true);
    // Fill the server's write ring until the write would block (arms READ).
    let chunk = [5u8; 1000];
    loop {
        match server.write(&chunk) {
            Ok(_) => {}
            Err(vchan::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
    }
    server.consume_events().unwrap();
    // The client frees space: the server is signalled.
    let mut buf = [0u8; 2000];
    assert!(client.read(&mut buf).unwrap() > 0);
    // A read on the server would block (no data): it must leave the event.
    match server.read(&mut buf) {
        Err(vchan::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("{other:?}"),
    }
    let mut p = libc::pollfd {
        fd: server.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    let rc = unsafe { libc::poll(&mut p, 1, 0) };
    assert_eq!(rc, 1, "the blocked write's wake-up was swallowed");
    server.consume_events().unwrap();
    assert!(server.write(&chunk).unwrap() > 0);
}

#[test]
fn linger_waits_until_the_peer_read_everything() {
    let dir = common::private_tempdir();
    let (sb, cb) = backends(dir.path());
    let path = "/local/domain/0/data/vchan/1/linger";
    let one = DomId::new(1).unwrap();
    let mut server = Endpoint::listen_at(sb, one, path, 4096, 4096).unwrap();
    let t = std::thread::spawn(move || {
        let mut c = Endpoint::connect_at(
            cb,
            DomId::new(0).unwrap(),
            path,
            Some(Duration::from_secs(5)),
        )
        .unwrap();
        c.write_all(&[5u8; 3000]).unwrap();
        let t0 = std::time::Instant::now();
        c.linger().unwrap();
        let waited = t0.elapsed();
        // Nothing more to wait for: at once.
        c.linger().unwrap();
        // Unread data when the peer closes: Closed.
        c.write_all(&[6u8; 100]).unwrap();
        let unread = c.linger();
        (waited, unread)
    });
    server.accept(Some(Duration::from_secs(5))).unwrap();
    // Let the client wait, then read in two steps.
    std::thread::sleep(Duration::from_millis(200));
    let mut buf = [0u8; 1000];
    let mut got = 0;
    while got < 3000 {
        let n = server.read(&mut buf).unwrap();
        assert!(buf[..n].iter().all(|&b| b == 5));
        got += n;
    }
    // The client lingers on its second write: close without reading it.
    std::thread::sleep(Duration::from_millis(100));
    server.close().unwrap();
    let (waited, unread) = t.join().unwrap();
    assert!(
        waited >= Duration::from_millis(150),
        "linger returned after {waited:?}"
    );
    assert!(matches!(unread, Err(vchan::Error::Closed)), "{unread:?}");
}

/// Event-channel sockets are bound and connected through a descriptor of
/// their directory (`/proc/self/fd/N/name`), so a rendezvous directory
/// deeper than a socket address (108 bytes) works.
#[test]
fn a_rendezvous_directory_longer_than_a_socket_address_works() {
    let top = common::private_tempdir();
    let mut deep = top.path().to_path_buf();
    while deep.as_os_str().len() < 200 {
        deep.push("a-rather-long-directory-name");
    }
    std::fs::create_dir_all(&deep).unwrap();
    let dir = deep.join("vchan");
    let (sb, cb) = backends(&dir);
    let path = "/local/domain/0/data/vchan/1/deep";
    let mut server = Endpoint::listen_at(sb, DomId::new(1).unwrap(), path, 4096, 4096).unwrap();
    let t = std::thread::spawn(move || {
        let mut c = Endpoint::connect_at(
            cb,
            DomId::new(0).unwrap(),
            path,
            Some(Duration::from_secs(5)),
        )
        .unwrap();
        let mut buf = [0u8; 5];
        std::io::Read::read_exact(&mut c, &mut buf).unwrap();
        c.write_all(&buf).unwrap();
        c.close().unwrap();
    });
    assert_eq!(
        server.accept(Some(Duration::from_secs(5))).unwrap(),
        State::Connected
    );
    server.write_all(b"hello").unwrap();
    let mut back = [0u8; 5];
    std::io::Read::read_exact(&mut server, &mut back).unwrap();
    assert_eq!(&back, b"hello");
    t.join().unwrap();
    server.close().unwrap();
    let left: Vec<_> = walk(&dir)
        .into_iter()
        .filter(|p| p.is_file() && !p.ends_with(".vchan-root"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// A client that connected before the server looked: `accept` returns
/// Connected at once, with the connection's hang-up descriptor ready (the
/// unix backend's event channel accepted the client's connection then,
/// not at some later wake-up; a blocking `accept` consumed events first
/// anyway, and missed only a client connecting in between).
#[test]
fn accept_of_a_client_already_connected_has_its_hangup_fd() {
    let dir = common::private_tempdir();
    let (sb, cb) = backends(dir.path());
    let path = "/local/domain/0/data/vchan/1/early";
    let mut server = Endpoint::listen_at(sb, DomId::new(1).unwrap(), path, 4096, 4096).unwrap();
    assert!(
        server.hangup_fd().is_none(),
        "a hang-up descriptor before any client"
    );
    let client = Endpoint::connect_at(
        cb,
        DomId::new(0).unwrap(),
        path,
        Some(Duration::from_secs(5)),
    )
    .unwrap();
    // (Non-blocking: `state` does not consume events then.)
    server.set_nonblocking(true);
    assert_eq!(server.accept(None).unwrap(), State::Connected);
    assert!(
        server.hangup_fd().is_some(),
        "accept returned with no hang-up descriptor"
    );
    drop(client);
}
