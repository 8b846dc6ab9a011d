//! Model checking, with loom, of xensim's event channel as a caller like
//! `vchan-socket-proxy` uses it (issue 10).
//!
//! The proxy (a libxenvchan server) first waits for its client with
//! `libxenvchan_wait` (= `xenevtchn_pending` + `xenevtchn_unmask`) until
//! `cli_live` is 1; then, in its data loop, it `select`s on the event
//! descriptor *before* it ever looks at the ring. The client connects
//! (live byte, event), writes, clears the server's WRITE request bit and,
//! since it was set, signals again. Both events may be in the socket when
//! the server drains it: if they merge into the one the first wait
//! consumes, the server sleeps in `select` for ever on a ring with data.
//!
//! The model runs xensim's own [`Delivery`] (the delivery cycle of Linux's
//! evtchn driver) under the handle's lock, with the socket as a message
//! count and the handle's descriptor readable when a port is queued or an
//! unmasked port's socket holds messages. Loom explores every
//! interleaving; in each, a server about to sleep in `select` must find
//! its descriptor readable once the client is done.
//! The model has teeth: with events merged (the old xensim) loom finds the
//! lost wake-up.

use std::panic::{catch_unwind, AssertUnwindSafe};

use loom::sync::atomic::{AtomicU32, AtomicU8, Ordering::SeqCst};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;
use xensim::evtchn::Delivery;

const WRITE: u8 = 1;

/// How the port's events are delivered.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// xensim today: Linux's masking ([`Delivery`]), the masked port's
    /// socket out of the epoll set.
    Masking,
    /// The old xensim: whatever one drain finds is one event; no masking.
    Merging,
}

struct Port {
    kind: Kind,
    /// Messages in the port's socket, not yet drained.
    msgs: u32,
    /// The port's socket is in the handle's epoll set.
    polled: bool,
    delivery: Delivery,
    /// The handle's eventfd: a port is queued.
    efd: bool,
}

impl Port {
    fn readable(&self) -> bool {
        self.efd || (self.polled && self.msgs > 0)
    }
}

struct Handle {
    port: Mutex<Port>,
    cv: Condvar,
}

impl Handle {
    fn new(kind: Kind) -> Handle {
        Handle {
            port: Mutex::new(Port {
                kind,
                msgs: 0,
                polled: true,
                delivery: Delivery::default(),
                efd: false,
            }),
            cv: Condvar::new(),
        }
    }

    /// The peer's `xenevtchn_notify`: one message into the socket.
    fn notify(&self) {
        self.port.lock().unwrap().msgs += 1;
        self.cv.notify_all();
    }

    /// Would `select`/`poll` on the handle's descriptor return now?
    fn readable(&self) -> bool {
        self.port.lock().unwrap().readable()
    }

    /// `xenevtchn_pending` (blocking): drain, then return the queued port.
    fn pending(&self) {
        let mut p = self.port.lock().unwrap();
        loop {
            let n = std::mem::take(&mut p.msgs);
            match p.kind {
                Kind::Masking => {
                    p.delivery.arrive(n);
                    if p.delivery.take() {
                        p.polled = false;
                        p.efd = false;
                        return;
                    }
                }
                Kind::Merging => {
                    if n > 0 || p.efd {
                        p.efd = false;
                        return;
                    }
                }
            }
            p.efd = false;
            while !p.readable() {
                p = self.cv.wait(p).unwrap();
            }
        }
    }

    /// `xenevtchn_unmask`.
    fn unmask(&self) {
        let mut p = self.port.lock().unwrap();
        if p.kind == Kind::Masking {
            if let Some(requeued) = p.delivery.unmask() {
                p.polled = true;
                p.efd |= requeued;
            }
        }
        drop(p);
        self.cv.notify_all();
    }

    /// `libxenvchan_wait`.
    fn wait(&self) {
        self.pending();
        self.unmask();
    }
}

/// The shared page's fields that matter here.
struct Page {
    prod: AtomicU32,
    cli_live: AtomicU8,
    /// Bits the client acts on; the server's init sets WRITE.
    cli_notify: AtomicU8,
}

fn proxy_connect_then_write(kind: Kind) {
    loom::model(move || {
        let h = Arc::new(Handle::new(kind));
        let page = Arc::new(Page {
            prod: AtomicU32::new(0),
            cli_live: AtomicU8::new(2),
            cli_notify: AtomicU8::new(WRITE),
        });
        let client = {
            let (h, page) = (h.clone(), page.clone());
            thread::spawn(move || {
                // libxenvchan_client_init: live, then the event.
                page.cli_live.store(1, SeqCst);
                h.notify();
                // A write: data, prod, then the notify bit.
                page.prod.store(1, SeqCst);
                if page.cli_notify.fetch_and(!WRITE, SeqCst) & WRITE != 0 {
                    h.notify();
                }
            })
        };
        // vchan-socket-proxy -m server: wait for the client...
        while page.cli_live.load(SeqCst) != 1 {
            h.wait();
        }
        // ...then its data loop: select first, look at the ring after.
        let mut client = Some(client);
        loop {
            if !h.readable() {
                // It sleeps in select until the client signals: once the
                // client is done, its descriptor must be readable.
                if let Some(c) = client.take() {
                    c.join().unwrap();
                }
                assert!(
                    h.readable(),
                    "lost wake-up: the server sleeps in select, data in the ring"
                );
            }
            h.wait();
            if page.prod.load(SeqCst) != 0 {
                break;
            }
        }
        if let Some(c) = client.take() {
            c.join().unwrap();
        }
    });
}

#[test]
fn proxy_server_is_woken_for_a_write_right_after_connect() {
    proxy_connect_then_write(Kind::Masking);
}

#[test]
fn merged_events_lose_the_wakeup() {
    let r = catch_unwind(AssertUnwindSafe(|| proxy_connect_then_write(Kind::Merging)));
    let msg = match r {
        Ok(()) => panic!("loom found no lost wake-up with merged events"),
        Err(e) => e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default(),
    };
    assert!(msg.contains("lost wake-up"), "unexpected failure: {msg}");
}
