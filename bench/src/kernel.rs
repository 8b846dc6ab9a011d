//! Two processes (`fork`) over a Unix stream socket, a pair of pipes, or
//! the shared-memory rings. The parent does the measuring half (stream
//! reader, pinger); the child writes or echoes and exits.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use crate::pair::{pipe, values, Values};
use crate::shm::{Layout, Mapping};
use crate::workload::{self, IoLink, Link};

/// Which kernel (or no-kernel) channel.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Socket,
    Pipe,
    /// The spinning rings, publishing after every `publish` bytes, their
    /// counters laid out as `layout` says.
    Shm {
        publish: usize,
        layout: Layout,
    },
}

/// What the two processes do.
#[derive(Debug, Clone, Copy)]
pub enum Job {
    /// Child writes `total` bytes in `chunk`-byte writes; parent reads.
    Stream { total: u64, chunk: usize },
    /// Parent pings `rounds` messages of `msg` bytes; child echoes.
    PingPong { rounds: u64, msg: usize },
    /// One cache line back and forth `rounds` times (shared memory only).
    Bounce { rounds: u64 },
    /// Child stays silent `ms` milliseconds, then writes a byte; the
    /// parent blocks on reading it.
    Idle { ms: u64 },
}

/// Run `job` over a fresh channel of `kind` whose buffer (socket buffer,
/// pipe capacity, ring) is `ring` bytes; with `pin`, the parent (reader,
/// pinger) on CPU `pin[0]` and the child on CPU `pin[1]`. What the parent
/// measured, as the vchan pairs' measuring sides print it.
pub fn run(kind: Kind, ring: usize, job: Job, pin: Option<[usize; 2]>) -> Result<Values, String> {
    let saved = affinity()?;
    if let Some([parent, _]) = pin {
        set_affinity(&only_cpu(parent)).map_err(|e| format!("pin to CPU {parent}: {e}"))?;
    }
    let r = run_on(kind, ring, job, pin.map(|p| p[1]));
    set_affinity(&saved).map_err(|e| format!("unpin: {e}"))?;
    Ok(values(&r?))
}

fn run_on(kind: Kind, ring: usize, job: Job, pin: Option<usize>) -> Result<String, String> {
    match kind {
        Kind::Socket => {
            let (a, b) = UnixStream::pair().map_err(|e| format!("socketpair: {e}"))?;
            for s in [&a, &b] {
                set_sockbuf(s, ring)?;
            }
            let link = |s: &UnixStream| -> Result<IoLink<UnixStream, UnixStream>, String> {
                let r = s.try_clone().map_err(|e| format!("dup: {e}"))?;
                let w = s.try_clone().map_err(|e| format!("dup: {e}"))?;
                Ok(IoLink { r, w })
            };
            let mut parent = link(&a)?;
            let child = link(&b)?;
            drop((a, b));
            two_processes(job, &mut parent, child, pin)
        }
        Kind::Pipe => {
            // to_child: parent -> child (ping messages); to_parent: the stream
            // and the echoes.
            let (to_child_r, to_child_w) = pipe()?;
            let (to_parent_r, to_parent_w) = pipe()?;
            set_pipe_size(&to_parent_w, ring)?;
            set_pipe_size(&to_child_w, ring)?;
            let mut parent = IoLink {
                r: File::from(to_parent_r),
                w: File::from(to_child_w),
            };
            let child = IoLink {
                r: File::from(to_child_r),
                w: File::from(to_parent_w),
            };
            two_processes(job, &mut parent, child, pin)
        }
        Kind::Shm { publish, layout } => {
            let map = Mapping::new(ring, layout)?;
            if let Job::Bounce { rounds } = job {
                return fork_pair(
                    || map.bounce(1, rounds).map(|_| ()),
                    || {
                        let sleeps0 = workload::sleeps();
                        let median_ns = map.bounce(0, rounds)?;
                        Ok(workload::rtt_lines(median_ns, workload::sleeps() - sleeps0))
                    },
                    pin,
                );
            }
            let mut parent = map.end(0, publish);
            let child = map.end(1, publish);
            two_processes(job, &mut parent, child, pin)
        }
    }
}

/// Fork: the child runs its half of `job` on `child` and exits; the parent
/// drops its copy of the child's end (so that it sees end-of-stream should
/// the child die), runs its half on `parent`, and reaps the child.
fn two_processes(
    job: Job,
    parent: &mut dyn Link,
    mut child: impl Link,
    pin: Option<usize>,
) -> Result<String, String> {
    fork_pair(
        move || match job {
            Job::Stream { total, chunk } => workload::stream_write(&mut child, total, chunk),
            Job::PingPong { rounds, msg } => workload::pong(&mut child, rounds, msg),
            Job::Idle { ms } => workload::idle_write(&mut child, ms),
            Job::Bounce { .. } => Err("a cache-line bounce needs shared memory".into()),
        },
        || match job {
            Job::Stream { total, chunk } => workload::stream_read(parent, total, chunk),
            Job::PingPong { rounds, msg } => workload::ping(parent, rounds, msg),
            Job::Idle { .. } => workload::idle_read(parent),
            Job::Bounce { .. } => Err("a cache-line bounce needs shared memory".into()),
        },
        pin,
    )
}

/// Fork: the child runs `child` and exits; the parent runs `parent` and
/// reaps the child (killing it if `parent` failed). With `pin`, the child
/// first pins itself to that CPU.
fn fork_pair(
    child: impl FnOnce() -> Result<(), String>,
    parent: impl FnOnce() -> Result<String, String>,
    pin: Option<usize>,
) -> Result<String, String> {
    // SAFETY: the bench is single-threaded when it forks; the child only
    // runs the workload on memory and descriptors it inherited, then
    // _exits without running the parent's destructors or atexit handlers.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if pin.is_some_and(|cpu| set_affinity(&only_cpu(cpu)).is_err()) {
                return Err("cannot pin the child".to_owned());
            }
            child()
        }));
        let code = match ok {
            Ok(Ok(())) => 0,
            Ok(Err(e)) => {
                eprintln!("vchan-bench: child: {e}");
                1
            }
            Err(_) => 1,
        };
        // SAFETY: ends the forked child at once, as intended.
        unsafe { libc::_exit(code) }
    }
    // Our copy of the child's half goes, so a dead child is end-of-stream.
    drop(child);
    let result = parent();
    if result.is_err() {
        // SAFETY: signalling the child forked above, still unreaped.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
    let mut status = 0;
    // SAFETY: reaping our own child; status is a valid out-pointer.
    let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
    let outcome = result?;
    if rc != pid || !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(format!("child failed (wait status {status})"));
    }
    Ok(outcome)
}

fn set_pipe_size(fd: &OwnedFd, size: usize) -> Result<(), String> {
    let size = libc::c_int::try_from(size).map_err(|_| format!("pipe size {size}"))?;
    // SAFETY: F_SETPIPE_SZ on a pipe descriptor we own.
    let rc = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, size) };
    if rc < 0 {
        return Err(format!(
            "F_SETPIPE_SZ {size}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

fn set_sockbuf(s: &UnixStream, size: usize) -> Result<(), String> {
    let v = libc::c_int::try_from(size).map_err(|_| format!("socket buffer {size}"))?;
    for opt in [libc::SO_SNDBUF, libc::SO_RCVBUF] {
        // SAFETY: setsockopt on a socket we own, with a c_int value of the
        // size we pass.
        let rc = unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&v as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(format!("setsockopt: {}", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// The CPUs this process may run on.
pub fn affinity() -> Result<libc::cpu_set_t, String> {
    // SAFETY: cpu_set_t is plain bits; all-zero is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: set is a valid cpu_set_t of the size we pass.
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Err(format!(
            "sched_getaffinity: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(set)
}

/// Restrict this process (thread) to `set`. Async-signal-safe: one system
/// call, usable between fork and exec.
pub fn set_affinity(set: &libc::cpu_set_t) -> std::io::Result<()> {
    // SAFETY: set is a valid cpu_set_t of the size we pass.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The set holding just `cpu` (empty if `cpu` is out of range; pinning
/// to it then fails).
pub fn only_cpu(cpu: usize) -> libc::cpu_set_t {
    // SAFETY: cpu_set_t is plain bits; all-zero is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let bits = 8 * std::mem::size_of::<libc::cpu_set_t>();
    if cpu < bits {
        // SAFETY: cpu is within the set's bits.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    set
}
