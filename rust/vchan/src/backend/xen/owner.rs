//! Who published a rendezvous, so that a restarted server can replace the
//! entry of one that died without clean-up (SIGKILL, a crash) and a live
//! one is never displaced.
//!
//! Xen cannot say whether the server behind a published `ring-ref` and
//! `event-channel` still lives (the grant and the port belong to the
//! hypervisor, not to a process we could probe). So our server also writes,
//! in the same transaction, a private key [`KEY`] (readable by its own
//! domain only) naming itself: this kernel's boot id, its pid namespace,
//! its pid and the process's start time. A server that finds an entry at
//! its path replaces it only when that key proves its writer dead: same
//! boot and pid namespace as us (so the same kernel's process table), and
//! no process with that pid and start time. Anything else — no key (Xen's
//! C library or another implementation wrote it), another boot or
//! namespace, a live writer, a key we cannot parse — is
//! [`crate::Error::AddrInUse`], as before.
//!
//! Only processes of our own domain can write below our
//! `/local/domain/<id>` (and dom0, which is trusted anyway), so a forged
//! key can at worst make a live entry look dead to a process of the same
//! domain with xenstore access, which could remove it anyway.

use std::fs;

/// The key, below the rendezvous path, that names the server.
pub(crate) use crate::backend::OWNER_LEAF as KEY;

/// The start time of process `pid` (`/proc/<pid>/stat` field 22, in clock
/// ticks since boot), or `None` if there is no such process.
fn start_time(pid: &str) -> Option<String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces:
    // count fields after its last ')'. Field 3 is the first after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(22 - 3).map(str::to_owned)
}

fn boot_id() -> Option<String> {
    let id = fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    Some(id.trim().to_owned())
}

fn pid_namespace() -> Option<String> {
    let ns = fs::read_link("/proc/self/ns/pid").ok()?;
    Some(ns.to_string_lossy().into_owned())
}

/// The value of [`KEY`] for this process: `boot=… pidns=… pid=… start=…`;
/// `None` if `/proc` does not tell (then nothing is written, and a dead
/// entry of ours will need removing by hand, as with Xen's C library).
pub(crate) fn this_process() -> Option<String> {
    let pid = std::process::id().to_string();
    Some(format!(
        "boot={} pidns={} pid={} start={}",
        boot_id()?,
        pid_namespace()?,
        pid,
        start_time(&pid)?
    ))
}

/// Does `recorded` (a value of [`KEY`]) prove that its writer is dead?
/// False whenever in doubt.
pub(crate) fn writer_is_dead(recorded: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(recorded) else {
        return false;
    };
    let field = |name: &str| {
        text.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
    };
    let (Some(boot), Some(ns), Some(pid), Some(start)) =
        (field("boot"), field("pidns"), field("pid"), field("start"))
    else {
        return false;
    };
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    if boot_id().as_deref() != Some(boot) || pid_namespace().as_deref() != Some(ns) {
        return false;
    }
    // The same kernel and pid namespace: the writer lives if and only if
    // its pid names a process started at the same time.
    start_time(pid).as_deref() != Some(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive() {
        let me = this_process().expect("/proc tells");
        assert!(!writer_is_dead(me.as_bytes()), "{me}");
    }

    #[test]
    fn a_dead_process_of_this_boot_is_dead() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id().to_string();
        let start = start_time(&pid);
        child.wait().unwrap();
        // Reaped: the pid names no process (or, reused, another start time).
        let start = start.unwrap_or_else(|| "1".into());
        let v = format!(
            "boot={} pidns={} pid={pid} start={start}",
            boot_id().unwrap(),
            pid_namespace().unwrap()
        );
        assert!(writer_is_dead(v.as_bytes()), "{v}");
    }

    #[test]
    fn doubt_is_alive() {
        let me = this_process().unwrap();
        for v in [
            String::new(),
            "garbage".to_owned(),
            me.replace("boot=", "boot=x"),
            me.replace("pidns=", "pidns=x"),
            me.replace("pid=", "pid=-"),
        ] {
            assert!(!writer_is_dead(v.as_bytes()), "{v:?}");
        }
        assert!(!writer_is_dead(&[0xff, 0xfe]));
    }
}
