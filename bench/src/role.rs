//! One side of a cell (as vbench.ml): `--role CHANNEL SIDE RING MODE COUNT SIZE`,
//! CHANNEL `vchan`, `xen`, `socket`, `pipe` or `shm:PUBLISH:LAYOUT` ([`crate::shm`]).

use std::ffi::CStr;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use vchan::{DomId, Endpoint, UnixBackend};

use crate::{pattern, SAMPLE};

/// The rendezvous of every vchan pair.
pub const PATH: &str = "/local/domain/0/data/vchan/1/bench";
const T: Option<Duration> = Some(Duration::from_secs(30));

fn num<T: std::str::FromStr>(v: &str) -> Result<T, String> {
    v.parse().map_err(|_| format!("bad number {v:?}"))
}

/// One side of a cell, from the arguments after `--role`.
pub fn role(args: &[String]) -> Result<(), String> {
    let [channel, side, ring, mode, count, size] = args else {
        return Err("usage: vchan-bench --role CHANNEL server|client RING MODE COUNT SIZE".into());
    };
    let (server, mode) = (side == "server", mode.as_str());
    let (ring, count, size): (usize, u64, usize) = (num(ring)?, num(count)?, num(size)?);
    let env = |k: &str| {
        std::env::var_os(k)
            .map(PathBuf::from)
            .ok_or(format!("{k} unset"))
    };
    let dir = env("VCHAN_UNIX_DIR")?;
    let listening = || println!("listening");
    let out = match channel.split(':').collect::<Vec<_>>()[..] {
        ["vchan"] => {
            let dom = |d: u32| DomId::new(d).map_err(|e| format!("domid {d}: {e}"));
            let backend = UnixBackend::new(dir, dom(u32::from(!server))?);
            let backend = std::sync::Arc::new(backend.map_err(|e| format!("backend: {e}"))?);
            let mut ep = if server {
                let ep = Endpoint::listen_at(backend, dom(1)?, PATH, ring, ring);
                let mut ep = ep.map_err(|e| format!("listen: {e}"))?;
                listening();
                ep.set_nonblocking(false);
                ep.accept(T).map_err(|e| format!("accept: {e}"))?;
                ep
            } else {
                let ep = Endpoint::connect_at(backend, dom(0)?, PATH, T);
                ep.map_err(|e| format!("connect: {e}"))?
            };
            ep.set_nonblocking(false);
            if let Some(n) = std::env::var_os("BENCH_SEGMENT") {
                let n = num(n.to_str().unwrap_or("?"))?;
                ep.set_segments(n, n)
                    .map_err(|e| format!("segments: {e}"))?;
            }
            let out = work(&mut ep, server, mode, count, size)?;
            ep.close().map_err(|e| format!("close: {e}"))?;
            out
        }
        ["xen"] => work(&mut Xen::open(server, ring)?, server, mode, count, size)?,
        ["socket"] => {
            let path = dir.join("sock");
            let s = if server {
                let l = UnixListener::bind(&path).map_err(|e| format!("bind: {e}"))?;
                listening();
                l.accept().map_err(|e| format!("accept: {e}"))?.0
            } else {
                UnixStream::connect(&path).map_err(|e| format!("connect: {e}"))?
            };
            let (fd, v, len) = (s.as_raw_fd(), ring as libc::c_int, size_of::<libc::c_int>());
            for opt in [libc::SO_SNDBUF, libc::SO_RCVBUF] {
                // SAFETY: a socket we own, a c_int option of that size.
                let rc = unsafe {
                    libc::setsockopt(
                        fd,
                        libc::SOL_SOCKET,
                        opt,
                        (&v as *const i32).cast(),
                        len as _,
                    )
                };
                check(rc, "setsockopt")?;
            }
            work(&mut &s, server, mode, count, size)?
        }
        ["pipe"] => {
            // Server to client "down", client to server "up"; each writer
            // sizes its pipe.
            let (up, down) = (dir.join("up"), dir.join("down"));
            let open = |p: &PathBuf, write: bool| {
                let f = std::fs::OpenOptions::new()
                    .read(!write)
                    .write(write)
                    .open(p);
                f.map_err(|e| format!("open {}: {e}", p.display()))
            };
            let (r, w) = if server {
                for p in [&up, &down] {
                    let st = std::process::Command::new("mkfifo").arg(p).status();
                    st.ok().filter(|s| s.success()).ok_or("mkfifo failed")?;
                }
                listening();
                (open(&up, false)?, open(&down, true)?)
            } else {
                let w = open(&up, true)?;
                (open(&down, false)?, w)
            };
            // SAFETY: F_SETPIPE_SZ on a pipe we own.
            let rc = unsafe { libc::fcntl(w.as_raw_fd(), libc::F_SETPIPE_SZ, ring as libc::c_int) };
            check(rc, "F_SETPIPE_SZ")?;
            work(&mut Duplex(&r, &w), server, mode, count, size)?
        }
        ["shm", publish, layout] => {
            let map = crate::shm::Mapping::open(&env("BENCH_SHM")?, ring, layout == "vchan")?;
            listening();
            // The server writes ring 0, and is the side of a bounce that measures.
            let tx = usize::from(!server);
            if mode == "bounce" {
                map.bounce(tx, count)?
            } else {
                work(&mut map.end(tx, num(publish)?), server, mode, count, size)?
            }
        }
        _ => return Err(format!("unknown channel {channel}")),
    };
    print!("{out}");
    Ok(())
}

type Ctrl = *mut libc::c_void;

/// Xen's libxenvchan, loaded at run time, making its blocking mode's calls.
struct Xen {
    ctrl: Ctrl,
    read: unsafe extern "C" fn(Ctrl, *mut u8, usize) -> i32,
    write: unsafe extern "C" fn(Ctrl, *const u8, usize) -> i32,
    wait: unsafe extern "C" fn(Ctrl) -> i32,
    close: unsafe extern "C" fn(Ctrl),
}

impl Xen {
    /// The server (domain 0, for domain 1) or the client at [`PATH`].
    fn open(server: bool, ring: usize) -> Result<Xen, String> {
        type Listen = unsafe extern "C" fn(Ctrl, i32, *const libc::c_char, usize, usize) -> Ctrl;
        type Connect = unsafe extern "C" fn(Ctrl, i32, *const libc::c_char) -> Ctrl;
        type Is = unsafe extern "C" fn(Ctrl) -> i32;
        let path = std::ffi::CString::new(PATH).map_err(|e| e.to_string())?;
        let (path, none) = (path.as_ptr(), std::ptr::null_mut());
        // SAFETY: loading Xen's library (its initialisers are its own); each
        // symbol is read as libxenvchan.h's function of that name.
        unsafe {
            let lib = libc::dlopen(c"libxenvchan.so".as_ptr(), libc::RTLD_NOW);
            check(if lib.is_null() { -1 } else { 0 }, "dlopen libxenvchan.so")?;
            let ctrl = match server {
                true => sym::<Listen>(lib, c"libxenvchan_server_init")?(none, 1, path, ring, ring),
                false => sym::<Connect>(lib, c"libxenvchan_client_init")?(none, 0, path),
            };
            check(if ctrl.is_null() { -1 } else { 0 }, "libxenvchan init")?;
            let x = Xen {
                ctrl,
                read: sym(lib, c"libxenvchan_read")?,
                write: sym(lib, c"libxenvchan_write")?,
                wait: sym(lib, c"libxenvchan_wait")?,
                close: sym(lib, c"libxenvchan_close")?,
            };
            if server {
                println!("listening");
                let is_open = sym::<Is>(lib, c"libxenvchan_is_open")?;
                while is_open(x.ctrl) == 2 {
                    check((x.wait)(x.ctrl), "libxenvchan_wait")?;
                }
            }
            Ok(x)
        }
    }

    /// `op` until it moves a byte, waiting while it moves none.
    fn io(&self, mut op: impl FnMut() -> i32) -> std::io::Result<usize> {
        loop {
            match op() {
                // SAFETY: ctrl is the open vchan.
                0 if unsafe { (self.wait)(self.ctrl) } == 0 => {}
                n if n > 0 => return Ok(n as usize),
                _ => return Err(std::io::Error::other("libxenvchan failed or closed")),
            }
        }
    }
}

/// The function `name` of the library `lib`, as an `F`.
///
/// # Safety
/// `F` is the type of that function (a function pointer, of a pointer's size).
unsafe fn sym<F: Copy>(lib: *mut libc::c_void, name: &CStr) -> Result<F, String> {
    // SAFETY: lib is a library dlopen returned.
    let f = unsafe { libc::dlsym(lib, name.as_ptr()) };
    // SAFETY: f is that function, of type F (the caller's word).
    (!f.is_null())
        .then(|| unsafe { std::mem::transmute_copy(&f) })
        .ok_or(format!("no {name:?}"))
}

impl Drop for Xen {
    fn drop(&mut self) {
        // SAFETY: ctrl is the open vchan, closed once.
        unsafe { (self.close)(self.ctrl) }
    }
}

impl Read for Xen {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // SAFETY: ctrl is the open vchan, buf writable for its length.
        self.io(|| unsafe { (self.read)(self.ctrl, buf.as_mut_ptr(), buf.len()) })
    }
}

impl Write for Xen {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            let left = &buf[done..];
            // SAFETY: ctrl is the open vchan, left readable for its length.
            done += self.io(|| unsafe { (self.write)(self.ctrl, left.as_ptr(), left.len()) })?;
            // SAFETY: ctrl is the open vchan.
            if done < buf.len() && unsafe { (self.wait)(self.ctrl) } != 0 {
                return Err(std::io::Error::other("libxenvchan_wait failed"));
            }
        }
        Ok(done)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The result `rc` of a system call that sets `what`.
fn check(rc: i32, what: &str) -> Result<(), String> {
    let e = || format!("{what}: {}", std::io::Error::last_os_error());
    (rc >= 0).then_some(()).ok_or_else(e)
}

/// Reading from one handle, writing to another.
struct Duplex<R, W>(R, W);

impl<R: Read, W> Read for Duplex<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl<R, W: Write> Write for Duplex<R, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.1.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.1.flush()
    }
}

/// This side's part of `mode`; what it measured, as `key=value` lines.
fn work(
    l: &mut (impl Read + Write),
    server: bool,
    mode: &str,
    count: u64,
    size: usize,
) -> Result<String, String> {
    let pat = pattern(size);
    let delay = std::env::var("BENCH_DELAY_US")
        .ok()
        .and_then(|v| v.parse().ok());
    let pause = || delay.map(|us| std::thread::sleep(Duration::from_micros(us)));
    let mut buf = vec![0u8; size];
    match (mode, server) {
        ("stream", true) => {
            let (mut pos, mut start, mut samples, mut t0) = (0, 0, 0, Instant::now());
            while pos < count {
                let n = read_some(l, &mut buf[..(count - pos).min(size as u64) as usize])?;
                samples += pat.verify(pos, &buf[..n], SAMPLE)?;
                if pos == 0 {
                    (t0, start) = (Instant::now(), n as u64);
                }
                pos += n as u64;
            }
            let (secs, bytes) = (t0.elapsed().as_secs_f64(), pos - start);
            return Ok(format!(
                "bytes={bytes}\nsecs={secs:.9}\nsamples={samples}\n"
            ));
        }
        ("stream", false) => {
            for pos in (0..count).step_by(size) {
                w(l, pat.run(pos, (count - pos).min(size as u64) as usize))?;
            }
        }
        ("ping", true) => {
            for _ in 0..count {
                l.read_exact(&mut buf).map_err(|e| format!("read: {e}"))?;
                pause();
                w(l, &buf)?;
            }
        }
        ("ping", false) => {
            let mut rtt = Vec::with_capacity(count as usize);
            for i in 0..count {
                let out = pat.run(i, size);
                pause();
                let t = Instant::now();
                w(l, out)?;
                l.read_exact(&mut buf).map_err(|e| format!("read: {e}"))?;
                rtt.push(t.elapsed().as_nanos() as u64);
                if buf != out {
                    return Err(format!("echo differs in round {i}"));
                }
            }
            rtt.sort_unstable();
            let median = rtt.get(rtt.len() / 2).ok_or("no rounds")?;
            return Ok(format!("median_ns={median}\n"));
        }
        ("idle", true) => {
            let (c0, t0) = (cpu_secs(), Instant::now());
            read_some(l, &mut [0u8; 1])?;
            let (cpu, wall) = (cpu_secs() - c0, t0.elapsed().as_secs_f64());
            return Ok(format!("cpu_secs={cpu:.6}\nwall_secs={wall:.6}\n"));
        }
        ("idle", false) => {
            std::thread::sleep(Duration::from_millis(count));
            w(l, &[1])?;
        }
        _ => return Err(format!("unknown mode {mode}")),
    }
    Ok(String::new())
}

fn w(l: &mut impl Write, b: &[u8]) -> Result<(), String> {
    l.write_all(b).map_err(|e| format!("write: {e}"))
}

/// Read at least a byte (readers know how much is coming: an end is an error).
fn read_some(l: &mut impl Read, buf: &mut [u8]) -> Result<usize, String> {
    match l.read(buf) {
        Ok(0) => Err("early end-of-stream".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("read: {e}")),
    }
}

/// This process's CPU time (user and system, seconds) so far.
fn cpu_secs() -> f64 {
    // SAFETY: rusage is plain data; all-zero is valid.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: ru is a valid out-pointer for getrusage.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0.0;
    }
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 * 1e-6;
    t(ru.ru_utime) + t(ru.ru_stime)
}
