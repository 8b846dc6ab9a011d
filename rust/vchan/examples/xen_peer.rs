//! The Rust API across Xen domains (make test-xen runs it against
//! test/xen/xvc.c, Xen's C library): with the xen backend, serve or connect
//! to domain DOMID on PORT, then
//! 1. echo N packets (blocking `recv`/`send`, sizes and bytes as xvc's),
//! 2. receive M pattern bytes non-blocking with zero-copy `peek`/`consume`,
//!    polling the event descriptor when it would block,
//! 3. send M pattern bytes non-blocking, polling likewise,
//!
//! then `linger` and `close`. Prints one line and exits 0 when every byte
//! was as expected.
//!
//! usage: xen_peer server|client DOMID PORT N M
use std::os::fd::AsRawFd;
use std::time::Duration;

use vchan::{rendezvous_path, DomId, Endpoint, Error, Port, State};

type Res<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// The size of packet `i` (xvc.c's `packet_size`).
fn packet_size(i: usize) -> usize {
    1 + (i * 37) % 1000
}

/// The stream's byte at offset `k` (xvc.c's `pattern`).
fn pattern(k: usize) -> u8 {
    ((k * 131) >> 3) as u8
}

fn would_block(e: &Error) -> bool {
    matches!(e, Error::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock)
}

/// Sleep until the event descriptor is readable, then take its events.
fn wait_event(ep: &mut Endpoint) -> Res<()> {
    let mut pfd = libc::pollfd {
        fd: ep.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, for the duration of the call.
    if unsafe { libc::poll(&mut pfd, 1, -1) } < 0 {
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e.into());
        }
    }
    ep.consume_events()?;
    Ok(())
}

fn echo_packets(ep: &mut Endpoint, n: usize) -> Res<()> {
    for i in 0..n {
        let mut buf = vec![0u8; packet_size(i)];
        if ep.recv(&mut buf)? != buf.len() {
            return Err(format!("packet {i}: end of stream").into());
        }
        if buf.iter().enumerate().any(|(j, b)| *b != (i + j) as u8) {
            return Err(format!("packet {i}: wrong bytes").into());
        }
        ep.send(&buf)?;
    }
    Ok(())
}

fn peek_stream(ep: &mut Endpoint, m: usize) -> Res<()> {
    let mut got = 0;
    let mut copy = vec![0u8; 0];
    while got < m {
        let span = match ep.peek() {
            Ok(span) => span,
            Err(e) if would_block(&e) => {
                wait_event(ep)?;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if span.len == 0 {
            return Err(format!("stream ended after {got} of {m} bytes").into());
        }
        let take = span.len.min(m - got);
        let (base, size) = ep.read_ring()?;
        if span.offset + take > size {
            return Err("peek's span leaves the ring".into());
        }
        copy.resize(take, 0);
        // SAFETY: [offset, offset + take) lies in the read ring's mapping
        // (checked against its size just above), which stays mapped while
        // the endpoint is open; bytes are copied out, never referenced.
        unsafe { std::ptr::copy_nonoverlapping(base.add(span.offset), copy.as_mut_ptr(), take) };
        if copy.iter().enumerate().any(|(j, b)| *b != pattern(got + j)) {
            return Err(format!("stream bytes differ near offset {got}").into());
        }
        ep.consume(take)?;
        got += take;
    }
    Ok(())
}

fn write_stream(ep: &mut Endpoint, m: usize) -> Res<()> {
    let mut sent = 0;
    while sent < m {
        let chunk: Vec<u8> = (sent..m.min(sent + 1000)).map(pattern).collect();
        match ep.write(&chunk) {
            Ok(n) => sent += n,
            Err(e) if would_block(&e) => wait_event(ep)?,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, role, domid, port, n, m] = &args[..] else {
        return Err("usage: xen_peer server|client DOMID PORT N M".into());
    };
    let peer = DomId::new(domid.parse()?)?;
    let port = Port::new(port)?;
    let (n, m): (usize, usize) = (n.parse()?, m.parse()?);
    let backend = vchan::backend_named("xen")?;
    let own = backend.own_domid()?;
    let mut ep = match role.as_str() {
        "server" => {
            let path = rendezvous_path(own, peer, &port);
            let mut ep = Endpoint::listen_at(backend, peer, &path, 4096, 4096)?;
            if ep.accept(Some(Duration::from_secs(120)))? != State::Connected {
                return Err("the client left before connecting".into());
            }
            ep
        }
        "client" => {
            let path = rendezvous_path(peer, own, &port);
            Endpoint::connect_at(backend, peer, &path, Some(Duration::from_secs(120)))?
        }
        _ => return Err("role: server or client".into()),
    };
    echo_packets(&mut ep, n)?;
    ep.set_nonblocking(true);
    peek_stream(&mut ep, m)?;
    write_stream(&mut ep, m)?;
    ep.set_nonblocking(false);
    ep.linger()?;
    ep.close()?;
    println!("xen_peer ok: {n} packets echoed, {m} bytes each way (peek/consume, non-blocking)");
    Ok(())
}
