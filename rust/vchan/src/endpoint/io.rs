//! I/O: stream and packet reads and writes, zero-copy, linger.

use std::io;
use std::os::fd::RawFd;

use vchan_core::{Span, Transfer};

use super::{Endpoint, State};
use crate::error::{Error, Result};

impl Endpoint {
    fn signal(&mut self, t: Transfer) -> Result<usize> {
        if t.notify {
            self.live_mut()?.event.notify()?;
        }
        Ok(t.bytes)
    }

    /// Stream read: up to `buf.len()` bytes; `Ok(0)` is end-of-stream (the
    /// peer closed and everything it wrote has been read).
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        if buf.is_empty() {
            self.live()?;
            return Ok(0);
        }
        loop {
            let t = self.live_mut()?.ch.read(buf)?;
            if t.bytes > 0 {
                return self.signal(t);
            }
            if self.peer_state()? == State::Exited {
                // Everything written before the close is visible now.
                let t = self.live_mut()?.ch.read(buf)?;
                return self.signal(t);
            }
            self.wait_until(
                |c| Ok(c.data_ready()? > 0),
                |c| Ok(c.data_ready_or_arm(1)? > 0),
            )?;
        }
    }

    /// Stream write: at least one byte of `buf` (blocking mode waits for
    /// space), at most all of it. Fails with [`Error::Closed`] once the peer
    /// is gone.
    pub fn write(&mut self, buf: &[u8]) -> Result<usize> {
        loop {
            if self.writer_peer_state()? == State::Exited {
                return Err(Error::Closed);
            }
            if buf.is_empty() {
                return Ok(0);
            }
            let t = self.live_mut()?.ch.write(buf)?;
            if t.bytes > 0 {
                return self.signal(t);
            }
            self.wait_until(
                |c| Ok(c.buffer_space()? > 0),
                |c| Ok(c.buffer_space_or_arm(1)? > 0),
            )?;
        }
    }

    /// Zero-copy write from a file descriptor: one `read(2)` from `fd`
    /// straight into the write ring's free span (no intermediate buffer),
    /// then one publication. `Some(n)`: `n > 0` bytes read and published,
    /// `Some(0)`: `fd` is at end-of-file, `None`: `fd` is non-blocking and
    /// has nothing now. Blocking mode waits for room in the ring first;
    /// non-blocking mode answers `WouldBlock` when the ring is full.
    /// [`Error::Closed`] once the peer is gone. It waits until half the
    /// ring is free (a low-water mark), so that each `read(2)` moves a
    /// large run rather than whatever the reader just released.
    pub fn write_from_fd(&mut self, fd: RawFd) -> Result<Option<usize>> {
        let want = (self.write_ring_size()? / 2).max(1);
        loop {
            if self.writer_peer_state()? == State::Exited {
                return Err(Error::Closed);
            }
            let ch = &self.live()?.ch;
            let span = ch.free_span()?;
            if span.len > 0 && ch.buffer_space()? >= want {
                let base = ch.write_ring().as_ptr();
                // SAFETY: [offset, offset + len) is the free span of our
                // write ring, within its mapping (free_span bounds it by the
                // ring's size); the kernel writes into it directly, and no
                // Rust reference to that shared memory is ever made.
                let n = unsafe { libc::read(fd, base.add(span.offset).cast(), span.len) };
                if n < 0 {
                    let e = io::Error::last_os_error();
                    return match e.kind() {
                        io::ErrorKind::WouldBlock => Ok(None),
                        io::ErrorKind::Interrupted => continue,
                        _ => Err(e.into()),
                    };
                }
                let t = self.live_mut()?.ch.produce(n as usize)?;
                return self.signal(t).map(Some);
            }
            self.wait_until(
                |c| Ok(c.buffer_space()? >= want),
                |c| Ok(c.buffer_space_or_arm(want)? >= want),
            )?;
        }
    }

    /// Write all of `buf`.
    pub fn write_all(&mut self, mut buf: &[u8]) -> Result<()> {
        while !buf.is_empty() {
            let n = self.write(buf)?;
            buf = &buf[n..];
        }
        Ok(())
    }

    /// Packet send: all of `buf` or nothing. Blocking mode waits for room;
    /// a packet larger than the ring is refused.
    pub fn send(&mut self, buf: &[u8]) -> Result<usize> {
        let want = buf.len();
        loop {
            if self.writer_peer_state()? == State::Exited {
                return Err(Error::Closed);
            }
            let t = self.live_mut()?.ch.send(buf)?;
            if t.bytes > 0 || want == 0 {
                return self.signal(t);
            }
            self.wait_until(
                |c| Ok(c.buffer_space()? >= want),
                |c| Ok(c.buffer_space_or_arm(want)? >= want),
            )?;
        }
    }

    /// Wait until the peer has read every byte we wrote — what `SO_LINGER`
    /// does before a socket's close. Useful before [`close`](Endpoint::close)
    /// when the peer (as some of Xen's tools do) stops reading as soon as
    /// it sees us closed. [`Error::Closed`] if the peer closed or died with
    /// some of it unread. Blocking mode waits; non-blocking mode answers
    /// `WouldBlock` (retry after [`consume_events`](Endpoint::consume_events)).
    /// `io::Write::flush` does not wait: it is a no-op.
    pub fn linger(&mut self) -> Result<()> {
        let all = self.write_ring_size()?;
        loop {
            if self.buffer_space()? >= all {
                return Ok(());
            }
            if self.writer_peer_state()? == State::Exited {
                return Err(Error::Closed);
            }
            self.wait_until(
                |c| Ok(c.buffer_space()? >= all),
                |c| Ok(c.buffer_space_or_arm(all)? >= all),
            )?;
        }
    }

    /// Packet receive: exactly `buf.len()` bytes or nothing. `Ok(0)` for a
    /// non-empty buffer means end-of-stream.
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize> {
        let want = buf.len();
        loop {
            let t = self.live_mut()?.ch.recv(buf)?;
            if t.bytes > 0 || want == 0 {
                return self.signal(t);
            }
            if self.peer_state()? == State::Exited {
                let t = self.live_mut()?.ch.recv(buf)?;
                if t.bytes > 0 {
                    return self.signal(t);
                }
                return match self.data_ready()? {
                    0 => Ok(0),
                    _ => Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "peer closed in the middle of a packet",
                    )
                    .into()),
                };
            }
            self.wait_until(
                |c| Ok(c.data_ready()? >= want),
                |c| Ok(c.data_ready_or_arm(want)? >= want),
            )?;
        }
    }

    /// Zero-copy read, first half: wait (in blocking mode) for readable
    /// bytes and return the contiguous run of them in the read ring. An
    /// empty span means end-of-stream. Release them with
    /// [`consume`](Endpoint::consume).
    pub fn peek(&mut self) -> Result<Span> {
        loop {
            let span = self.live()?.ch.peek()?;
            if span.len > 0 {
                return Ok(span);
            }
            if self.peer_state()? == State::Exited {
                return Ok(self.live()?.ch.peek()?);
            }
            self.wait_until(
                |c| Ok(c.data_ready()? > 0),
                |c| Ok(c.data_ready_or_arm(1)? > 0),
            )?;
        }
    }

    /// Zero-copy read, second half: release `n` bytes seen with `peek`.
    pub fn consume(&mut self, n: usize) -> Result<()> {
        let t = self.live_mut()?.ch.consume(n)?;
        self.signal(t).map(|_| ())
    }

    /// Base address of the ring we read from (for zero-copy views built on
    /// [`peek`](Endpoint::peek)'s offsets), and its size.
    pub fn read_ring(&self) -> Result<(*const u8, usize)> {
        let ch = &self.live()?.ch;
        Ok((ch.read_ring().as_ptr(), ch.read_size()))
    }
}

impl io::Read for Endpoint {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Endpoint::read(self, buf).map_err(Into::into)
    }
}

impl io::Write for Endpoint {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Endpoint::write(self, buf).map_err(Into::into)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
