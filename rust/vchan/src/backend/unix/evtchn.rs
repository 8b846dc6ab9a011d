//! Event channels as Unix sequenced-packet sockets.
//!
//! Port `p` of domain `d` is the lock file `evtchn/<d>/<p>`, owned by the
//! process that bound it. A server's unbound port also listens on
//! `evtchn/<d>/<p>.sock` until its one client connects; the client holds
//! the slot `evtchn/<d>/<p>.peer` while connected, so a second client is
//! refused. Messages: `N` (notify) and `U` + owner, grant ref, offset (the
//! sender's unmap-notify: what the survivor should clear if the sender
//! dies), `B` (the sender runs a process-wide barrier after every notify
//! request it posts: see [`vchan_core::Fences::PeerBarrier`]). End-of-file
//! on the socket means the peer closed or died.
//!
//! A port's file holds its owner's unmap-notify request too (the bytes of
//! its `U` message), and a client reads its server's when it binds. A
//! server sends the message only once it has accepted the connection,
//! which it does the next time it consumes events or notifies; a server
//! that dies first (possibly after it saw its client connected in the
//! shared page, idle since) would otherwise die unseen by a client that
//! carries out the request itself (xensim, on its C side's behalf). Under
//! Xen the request holds from the moment the page is shared.
//!
//! The descriptor users poll is an epoll instance holding the listening
//! socket, then the connection; it stops polling readable once the peer is
//! gone and that was reported.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use super::fsobj::{self, Owned};
use crate::backend::{EventChannel, Events};
use crate::port::DomId;

const MSG_NOTIFY: u8 = b'N';
const MSG_UNMAP: u8 = b'U';
const MSG_BARRIER: u8 = b'B';
const UNMAP_LEN: usize = 13;
/// Longest message we read (longer ones are truncated, then ignored).
const MSG_MAX: usize = 64;
/// Messages taken per system call when draining.
const BATCH: usize = 64;

/// A peer's unmap-notify request, as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnmapNotify {
    /// Domain that shared the page.
    pub owner: u32,
    /// Grant reference of the page.
    pub gref: u32,
    /// Byte to clear.
    pub offset: u32,
}

/// An unmap-notify request (`U`, then owner, grant ref and offset, each
/// little-endian), as a message or a port's file holds it.
fn parse_unmap(msg: &[u8]) -> Option<UnmapNotify> {
    if msg.len() != UNMAP_LEN || msg[0] != MSG_UNMAP {
        return None;
    }
    let w = |i: usize| u32::from_le_bytes([msg[i], msg[i + 1], msg[i + 2], msg[i + 3]]);
    Some(UnmapNotify {
        owner: w(1),
        gref: w(5),
        offset: w(9),
    })
}

/// Directory of domain `domid`'s ports.
pub(crate) fn dom_dir(root: &Path, domid: u32) -> PathBuf {
    root.join("evtchn").join(domid.to_string())
}

fn cvt(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn sockaddr(path: &Path) -> io::Result<(libc::sockaddr_un, libc::socklen_t)> {
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: sockaddr_un is plain old data; all-zero is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_bytes();
    if bytes.len() >= addr.sun_path.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "socket path {} too long: choose a shorter VCHAN_UNIX_DIR",
                path.display()
            ),
        ));
    }
    for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1;
    Ok((addr, len as libc::socklen_t))
}

/// The address of socket `name` in directory `dir` (a descriptor), through
/// `/proc/self/fd`: nothing above `name` is looked up by path again (a
/// swapped symlink cannot redirect the bind or connect), and the address
/// stays short however long `VCHAN_UNIX_DIR` is.
fn sockaddr_at(dir: &OwnedFd, name: &str) -> io::Result<(libc::sockaddr_un, libc::socklen_t)> {
    sockaddr(Path::new(&format!(
        "/proc/self/fd/{}/{name}",
        dir.as_raw_fd()
    )))
}

/// The domain directory `dir` of the rendezvous tree, opened (it exists:
/// a port was just allocated or checked in it).
fn dom_dir_fd(dir: &Path) -> io::Result<OwnedFd> {
    fsobj::open_dom_dir(dir)?.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("{}: no such event channel directory", dir.display()),
        )
    })
}

fn seqpacket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call; the result is checked and owned.
    let fd = cvt(unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    })?;
    // SAFETY: fd is a fresh descriptor we exclusively own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Make a connected socket blocking (see [`UnixEvent::wait`]).
fn set_blocking(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own.
    let fl = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
    // SAFETY: as above.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl & !libc::O_NONBLOCK) })?;
    Ok(())
}

fn epoll_with(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: plain epoll_create1(2); the result is checked and owned.
    let ep = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
    // SAFETY: ep is a fresh descriptor we exclusively own.
    let ep = unsafe { OwnedFd::from_raw_fd(ep) };
    epoll_ctl(&ep, libc::EPOLL_CTL_ADD, fd)?;
    Ok(ep)
}

fn epoll_ctl(ep: &OwnedFd, op: libc::c_int, fd: RawFd) -> io::Result<()> {
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: fd as u64,
    };
    // SAFETY: both descriptors are valid; `ev` lives across the call.
    cvt(unsafe { libc::epoll_ctl(ep.as_raw_fd(), op, fd, &mut ev) })?;
    Ok(())
}

/// Send one message without blocking. A full queue is fine for notifies
/// (the peer has events pending anyway); a dead peer is found by `drain`.
fn send(fd: &OwnedFd, msg: &[u8]) -> io::Result<()> {
    // SAFETY: msg is a valid buffer for the duration of the call.
    let rc = unsafe {
        libc::send(
            fd.as_raw_fd(),
            msg.as_ptr().cast(),
            msg.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    if rc < 0 {
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EAGAIN)
            | Some(libc::EPIPE)
            | Some(libc::ECONNRESET)
            | Some(libc::ENOTCONN) => Ok(()),
            _ => Err(e),
        }
    } else {
        Ok(())
    }
}

/// Allocate a port number in `dir`: a locked file `<port>`.
fn alloc_port(dir: &Path) -> io::Result<(u32, Owned)> {
    // The lowest free port of 1..=65535, as Xen allocates them (programs
    // such as ocaml-evtchn index arrays of 1024 by port number).
    for port in 1..=65535u32 {
        if let Some(lock) = fsobj::create(dir, &port.to_string(), b"")? {
            return Ok((port, lock));
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        "no free event channel port",
    ))
}

/// A server's listening socket, until its one client came: the socket,
/// its directory and its name there.
#[derive(Debug)]
struct Listener {
    fd: OwnedFd,
    dir: OwnedFd,
    name: String,
}

impl Listener {
    /// Remove the socket's name (no client can come any more).
    fn unlink(&self) {
        let _ = fsobj::unlink_at(self.dir.as_raw_fd(), &self.name, 0);
    }
}

/// One end of a unix-backend event channel.
#[derive(Debug)]
pub struct UnixEvent {
    port: u32,
    epoll: OwnedFd,
    listener: Option<Listener>,
    conn: Option<OwnedFd>,
    gone: bool,
    gone_reported: bool,
    my_unmap: Option<[u8; UNMAP_LEN]>,
    peer_unmap: Option<UnmapNotify>,
    // Dropped last: the port stays ours until the sockets are closed.
    _slot: Option<Owned>,
    /// The port's file (holding our unmap-notify request, once set).
    lock: Owned,
}

impl UnixEvent {
    /// Allocate a port of domain `own` for a peer to bind to.
    pub fn bind_unbound(root: &Path, own: u32) -> io::Result<UnixEvent> {
        let dir = dom_dir(root, own);
        let (port, lock) = alloc_port(&dir)?;
        let dfd = dom_dir_fd(&dir)?;
        let sock_name = format!("{port}.sock");
        fsobj::unlink_at(dfd.as_raw_fd(), &sock_name, 0)?;
        let fd = seqpacket()?;
        let (addr, len) = sockaddr_at(&dfd, &sock_name)?;
        // SAFETY: addr/len describe a valid sockaddr_un.
        cvt(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_un).cast(),
                len,
            )
        })?;
        // Only our own uid may connect (the umask would leave it 0755). The
        // name is the socket bind just made (binding never follows or
        // replaces an existing entry).
        let n = fsobj::cstr(sock_name.as_bytes())?;
        // SAFETY: `n` is NUL-terminated; dfd is an open directory.
        cvt(unsafe { libc::fchmodat(dfd.as_raw_fd(), n.as_ptr(), 0o600, 0) })?;
        // SAFETY: fd is a bound socket.
        cvt(unsafe { libc::listen(fd.as_raw_fd(), 4) })?;
        let epoll = epoll_with(fd.as_raw_fd())?;
        Ok(UnixEvent {
            port,
            epoll,
            listener: Some(Listener {
                fd,
                dir: dfd,
                name: sock_name,
            }),
            conn: None,
            gone: false,
            gone_reported: false,
            my_unmap: None,
            peer_unmap: None,
            _slot: None,
            lock,
        })
    }

    /// Bind to port `remote_port` of domain `remote`, from domain `own`.
    /// Fails with `ResourceBusy` if another client holds the port, and
    /// `ConnectionRefused` if no live server listens on it.
    pub fn bind_interdomain(
        root: &Path,
        own: u32,
        remote: u32,
        remote_port: u32,
    ) -> io::Result<UnixEvent> {
        let rdir = dom_dir(root, remote);
        if !fsobj::is_live(&rdir.join(remote_port.to_string()))? {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!("no live event channel {remote_port} in domain {remote}"),
            ));
        }
        let slot_name = format!("{remote_port}.peer");
        let slot = match fsobj::create(&rdir, &slot_name, b"")? {
            Some(s) => s,
            None => {
                if !fsobj::reap(&rdir.join(&slot_name))? {
                    return Err(io::Error::new(
                        io::ErrorKind::ResourceBusy,
                        format!("event channel {remote_port} of domain {remote} is already bound"),
                    ));
                }
                fsobj::create(&rdir, &slot_name, b"")?.ok_or_else(|| {
                    io::Error::new(io::ErrorKind::ResourceBusy, "event channel already bound")
                })?
            }
        };
        let rfd = dom_dir_fd(&rdir)?;
        let sock_name = format!("{remote_port}.sock");
        // connect(2) follows a symlink in the last component: the entry
        // must be a socket itself.
        let is_socket = fsobj::stat_at(rfd.as_raw_fd(), &fsobj::cstr(sock_name.as_bytes())?)
            .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFSOCK);
        if !is_socket {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!("event channel {remote_port} of domain {remote}: no listening socket"),
            ));
        }
        let fd = seqpacket()?;
        let (addr, len) = sockaddr_at(&rfd, &sock_name)?;
        // SAFETY: addr/len describe a valid sockaddr_un.
        let rc = unsafe {
            libc::connect(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_un).cast(),
                len,
            )
        };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!("event channel {remote_port} of domain {remote}: {e}"),
            ));
        }
        set_blocking(&fd)?;
        // The server's unmap-notify request, written before it published
        // (see the module's documentation); optional, as is its message.
        let peer_unmap = fsobj::read_small_at(rfd.as_raw_fd(), &remote_port.to_string(), MSG_MAX)
            .ok()
            .flatten()
            .and_then(|v| parse_unmap(&v));
        let (port, lock) = alloc_port(&dom_dir(root, own))?;
        let epoll = epoll_with(fd.as_raw_fd())?;
        Ok(UnixEvent {
            port,
            epoll,
            listener: None,
            conn: Some(fd),
            gone: false,
            gone_reported: false,
            my_unmap: None,
            peer_unmap,
            _slot: Some(slot),
            lock,
        })
    }

    /// The peer's unmap-notify request, if it sent one.
    pub fn peer_unmap(&self) -> Option<UnmapNotify> {
        self.peer_unmap
    }

    /// Consume every pending message, [`BATCH`] per system call; with
    /// `block`, wait for the first one (the connection is a blocking
    /// socket; every other call on it passes `MSG_DONTWAIT`).
    fn receive(&mut self, block: bool) -> io::Result<Events> {
        let mut ev = Events::default();
        if self.listener.is_some() {
            self.try_accept()?;
        }
        let mut resets = 0;
        let mut flags = if block {
            libc::MSG_WAITFORONE
        } else {
            libc::MSG_DONTWAIT
        };
        while let Some(fd) = self.conn.as_ref().map(AsRawFd::as_raw_fd) {
            let mut bufs = [[0u8; MSG_MAX]; BATCH];
            // SAFETY: iovec and mmsghdr are plain data; all-zero is valid.
            let mut iov: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
            // SAFETY: as above.
            let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
            for ((h, v), b) in hdrs.iter_mut().zip(iov.iter_mut()).zip(bufs.iter_mut()) {
                v.iov_base = b.as_mut_ptr().cast();
                v.iov_len = b.len();
                h.msg_hdr.msg_iov = v;
                h.msg_hdr.msg_iovlen = 1;
            }
            // SAFETY: hdrs holds BATCH headers, each pointing at one iovec
            // of a distinct MSG_MAX-byte buffer; all live across the call.
            let n = unsafe {
                libc::recvmmsg(
                    fd,
                    hdrs.as_mut_ptr(),
                    BATCH as libc::c_uint,
                    flags,
                    std::ptr::null_mut(),
                )
            };
            flags = libc::MSG_DONTWAIT;
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EAGAIN) => break,
                    // A signal during a blocking wait: a spurious wake-up
                    // (callers re-check the ring).
                    Some(libc::EINTR) => break,
                    // The peer closed with messages of ours unread; the
                    // error comes first, then what it sent us (its
                    // unmap-notify), then end-of-file.
                    Some(libc::ECONNRESET) => {
                        self.gone = true;
                        resets += 1;
                        if resets > 1 {
                            break;
                        }
                        continue;
                    }
                    _ => return Err(e),
                }
            }
            let got = n as usize;
            let mut eof = false;
            for (h, b) in hdrs.iter().zip(&bufs).take(got) {
                let len = (h.msg_len as usize).min(MSG_MAX);
                if len == 0 {
                    // End-of-file fills the batch with empty messages.
                    eof = true;
                    break;
                }
                self.take_message(&b[..len], &mut ev);
            }
            if eof {
                self.gone = true;
                break;
            }
            if got < BATCH {
                break;
            }
        }
        if self.gone {
            if let Some(conn) = self.conn.take() {
                epoll_ctl(&self.epoll, libc::EPOLL_CTL_DEL, conn.as_raw_fd())?;
            }
            if !self.gone_reported {
                self.gone_reported = true;
                ev.notifies = ev.notifies.max(1);
            }
            ev.peer_gone = true;
        }
        Ok(ev)
    }

    fn take_message(&mut self, msg: &[u8], ev: &mut Events) {
        match msg[0] {
            MSG_NOTIFY => ev.notifies = ev.notifies.saturating_add(1),
            MSG_BARRIER => ev.peer_barrier = true,
            // Unknown and malformed messages are ignored (forward
            // compatibility).
            _ => {
                if let Some(u) = parse_unmap(msg) {
                    self.peer_unmap = Some(u);
                }
            }
        }
    }

    /// Accept a pending connection, if any (server side).
    fn try_accept(&mut self) -> io::Result<()> {
        let Some(l) = &self.listener else {
            return Ok(());
        };
        // SAFETY: accept4 on our listening socket; null address is allowed.
        let rc = unsafe {
            libc::accept4(
                l.fd.as_raw_fd(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                // Blocking: `wait` blocks in recvmmsg; every other call
                // passes MSG_DONTWAIT.
                libc::SOCK_CLOEXEC,
            )
        };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::ECONNABORTED) => Ok(()),
                _ => Err(e),
            };
        }
        // SAFETY: rc is a fresh descriptor we exclusively own.
        let conn = unsafe { OwnedFd::from_raw_fd(rc) };
        // One client per port: stop listening.
        epoll_ctl(&self.epoll, libc::EPOLL_CTL_DEL, l.fd.as_raw_fd())?;
        l.unlink();
        self.listener = None;
        epoll_ctl(&self.epoll, libc::EPOLL_CTL_ADD, conn.as_raw_fd())?;
        if let Some(msg) = self.my_unmap {
            send(&conn, &msg)?;
        }
        self.conn = Some(conn);
        Ok(())
    }
}

impl EventChannel for UnixEvent {
    fn port(&self) -> u32 {
        self.port
    }

    fn notify(&mut self) -> io::Result<()> {
        if self.listener.is_some() {
            self.try_accept()?;
        }
        match &self.conn {
            Some(c) if !self.gone => send(c, &[MSG_NOTIFY]),
            _ => Ok(()),
        }
    }

    fn fd(&self) -> RawFd {
        self.epoll.as_raw_fd()
    }

    fn drain(&mut self) -> io::Result<Events> {
        self.receive(false)
    }

    /// One system call when connected: a blocking `recvmmsg` that waits
    /// for the first message and takes every other pending one with it
    /// (end-of-file, a dead peer, wakes it as well).
    fn wait(&mut self) -> io::Result<Events> {
        if self.listener.is_some() || self.conn.is_none() {
            crate::backend::poll_fd(self.fd(), None)?;
            return self.drain();
        }
        self.receive(true)
    }

    fn set_unmap_notify(&mut self, owner: DomId, gref: u32, offset: u32) -> io::Result<()> {
        let mut msg = [0u8; UNMAP_LEN];
        msg[0] = MSG_UNMAP;
        msg[1..5].copy_from_slice(&owner.get().to_le_bytes());
        msg[5..9].copy_from_slice(&gref.to_le_bytes());
        msg[9..13].copy_from_slice(&offset.to_le_bytes());
        self.lock.set_content(&msg)?;
        self.my_unmap = Some(msg);
        if let Some(c) = &self.conn {
            send(c, &msg)?;
        }
        Ok(())
    }

    fn hangup_fd(&self) -> Option<RawFd> {
        match &self.conn {
            Some(c) if !self.gone => Some(c.as_raw_fd()),
            _ => None,
        }
    }

    fn announce_barrier(&mut self) -> io::Result<()> {
        match &self.conn {
            Some(c) if !self.gone => send(c, &[MSG_BARRIER]),
            _ => Err(io::ErrorKind::NotConnected.into()),
        }
    }
}

impl Drop for UnixEvent {
    fn drop(&mut self) {
        if let Some(l) = &self.listener {
            l.unlink();
        }
    }
}

/// Remove the stale ports, sockets and client slots of the domain
/// directory `dir` (a descriptor: nothing is reached through a symlink).
/// Only our names are judged — `<port>`, `<port>.peer`, `<port>.sock` and
/// temporary files —, only regular files (and, for `.sock`, sockets) are
/// removed, and anything else is skipped: one odd entry never stops the
/// sweep.
pub(crate) fn sweep_dir(dir: RawFd) {
    let Ok(entries) = fsobj::list(dir) else {
        return;
    };
    let is_port = |s: &str| !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit());
    for (name, kind) in entries {
        let res = if let Some(port) = name.strip_suffix(".sock") {
            if kind != fsobj::Kind::Socket || !is_port(port) {
                fsobj::skipped("evtchn/<domid>", &name);
                continue;
            }
            match fsobj::is_live_at(dir, port) {
                Ok(false) => fsobj::unlink_at(dir, &name, 0),
                other => other.map(|_| ()),
            }
        } else {
            let base = name.strip_suffix(".peer").unwrap_or(&name);
            if kind != fsobj::Kind::File || !(is_port(base) || name.starts_with(fsobj::TMP_PREFIX))
            {
                fsobj::skipped("evtchn/<domid>", &name);
                continue;
            }
            // Port locks, client slots and temporary files.
            fsobj::reap_at(dir, &name).map(|_| ())
        };
        // A failure on one entry (it vanished, or we may not touch it)
        // leaves it to a later sweep.
        let _ = res;
    }
}
