//! Linux's `membarrier(2)`: the process-wide barrier behind
//! [`Fences::PeerBarrier`](vchan_core::Fences::PeerBarrier).
//!
//! `MEMBARRIER_CMD_GLOBAL_EXPEDITED` makes every running thread of every
//! process registered with `MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED`
//! execute a full memory barrier before the call returns (threads not
//! running get theirs from the context switch). Two vchan-rs processes of
//! the unix backend both register; each runs this barrier after posting a
//! notify request, before it re-checks the ring and sleeps, and so each may
//! publish its indices on the fast path without a fence of its own. A
//! sleep already costs system calls and tens of microseconds; the barrier
//! adds a few (inter-processor interrupts to the CPUs running registered
//! processes), while the fence it saves is paid on every operation.
//!
//! It is opt-in: `VCHAN_MEMBARRIER=1` in the environment of both processes.
//! The trade: each sleep then costs one more system call (three per wake-up
//! instead of two), and the barrier interrupts every CPU that is running a
//! registered process, including other vchan-rs programs of the host that
//! never talk to us; in exchange, every read and write saves a full fence
//! (`make bench` measures both ways). Without it (the default), or on a
//! kernel or under a seccomp policy without `membarrier`, nothing is
//! registered or announced, and both sides keep full fences.

use std::sync::atomic::{AtomicI32, Ordering};

// <linux/membarrier.h>
const CMD_QUERY: libc::c_int = 0;
const CMD_GLOBAL_EXPEDITED: libc::c_int = 1 << 1;
const CMD_REGISTER_GLOBAL_EXPEDITED: libc::c_int = 1 << 2;

fn membarrier(cmd: libc::c_int) -> libc::c_long {
    // SAFETY: membarrier takes two integer arguments and touches no
    // memory of ours; an unknown command fails with EINVAL.
    unsafe {
        libc::syscall(
            libc::SYS_membarrier,
            cmd,
            0 as libc::c_uint,
            0 as libc::c_int,
        )
    }
}

/// The process that registered (0: none yet, -1: unavailable here). A
/// registration belongs to one address space: a child made by `fork`
/// inherits this variable but not the registration, so it registers again.
static REGISTERED: AtomicI32 = AtomicI32::new(0);

/// The environment variable that turns the barrier on (`1`).
pub(crate) const ENV: &str = "VCHAN_MEMBARRIER";

/// The barrier to run after posting a notify request, if this process can
/// both run it and receive it (registering it first if needed).
pub(crate) fn process_barrier() -> Option<fn()> {
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    match REGISTERED.load(Ordering::Acquire) {
        -1 => return None,
        p if p == pid => return Some(barrier),
        _ => {}
    }
    if std::env::var_os(ENV).is_none_or(|v| v != "1") {
        REGISTERED.store(-1, Ordering::Release);
        return None;
    }
    let want = (CMD_GLOBAL_EXPEDITED | CMD_REGISTER_GLOBAL_EXPEDITED) as libc::c_long;
    let q = membarrier(CMD_QUERY);
    if q < 0 || q & want != want || membarrier(CMD_REGISTER_GLOBAL_EXPEDITED) != 0 {
        REGISTERED.store(-1, Ordering::Release);
        return None;
    }
    REGISTERED.store(pid, Ordering::Release);
    Some(barrier)
}

/// A full barrier in every thread of every registered process. It cannot
/// fail once `process_barrier` found the command supported (it needs no
/// registration of the caller), so its result is not looked at.
fn barrier() {
    membarrier(CMD_GLOBAL_EXPEDITED);
}

#[cfg(test)]
mod tests {
    #[test]
    fn off_unless_asked_for() {
        // Unit tests run without it (tests/barrier.rs runs processes that
        // ask for it); the answer is then fixed for this process.
        if std::env::var_os(super::ENV).is_none() {
            assert!(super::process_barrier().is_none());
            assert!(super::process_barrier().is_none());
        }
    }
}
