//! How an event channel port's events reach `xenevtchn_pending`: Linux's
//! masking, as [`Delivery`] keeps it (used by [`crate::evtchn`]).

/// One port's place in the delivery cycle of Linux's evtchn driver
/// (`drivers/xen/evtchn.c`): the interrupt handler, run when an event
/// arrives, queues the port for `read` and masks it; while it is masked
/// further events only leave Xen's pending bit set (they merge into one);
/// the `write` that unmasks it (`xenevtchn_unmask`) lets a pending event
/// through, which queues the port again.
///
/// xensim sees events only when it drains a port's socket, possibly long
/// after they were sent. Under Xen the handler runs at once, so of `n`
/// events found by one drain the first queues the port and the others
/// arrived while it was masked: they are latched, not lost. (Xen may merge
/// two events that come within the handler's latency; we deliver one more
/// than Xen then, and a spurious event is always allowed.)
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// Queued for `xenevtchn_pending`.
    queued: bool,
    /// Masked: queued or returned by `xenevtchn_pending`, not yet unmasked.
    masked: bool,
    /// An event arrived while masked.
    latched: bool,
}

impl Delivery {
    /// `n` events arrived.
    pub fn arrive(&mut self, n: u32) {
        if n == 0 {
            return;
        }
        if self.masked {
            self.latched = true;
            return;
        }
        self.queued = true;
        self.masked = true;
        self.latched = n > 1;
    }

    /// Is the port queued?
    pub fn is_queued(&self) -> bool {
        self.queued
    }

    /// Take the port off the queue (`xenevtchn_pending` returns it); it
    /// stays masked.
    pub fn take(&mut self) -> bool {
        std::mem::take(&mut self.queued)
    }

    /// `xenevtchn_unmask`: `None` if the port was not masked after a
    /// delivery (a port still queued stays masked: libxenvchan never
    /// unmasks one); else whether a latched event queued it again.
    pub fn unmask(&mut self) -> Option<bool> {
        if self.queued || !self.masked {
            return None;
        }
        self.masked = false;
        if std::mem::take(&mut self.latched) {
            self.arrive(1);
            return Some(true);
        }
        Some(false)
    }
}

#[cfg(test)]
mod tests {
    use super::Delivery;

    #[test]
    fn one_event_is_delivered_once() {
        let mut d = Delivery::default();
        d.arrive(1);
        assert!(d.take());
        assert!(!d.take());
        assert_eq!(d.unmask(), Some(false), "nothing arrived while masked");
        assert_eq!(d.unmask(), None, "not masked any more");
        assert!(!d.is_queued());
    }

    #[test]
    fn events_while_masked_are_delivered_after_unmask() {
        let mut d = Delivery::default();
        // Two events seen by one drain: the second came while masked.
        d.arrive(2);
        assert!(d.take());
        assert!(!d.is_queued(), "masked: not delivered before unmask");
        assert_eq!(
            d.unmask(),
            Some(true),
            "the latched event queues the port again"
        );
        assert!(d.take());
        assert_eq!(d.unmask(), Some(false));
        // An event after delivery, before unmask: latched, not lost.
        d.arrive(1);
        assert!(d.take());
        d.arrive(1);
        d.arrive(3);
        assert!(!d.is_queued());
        assert_eq!(d.unmask(), Some(true));
        assert!(d.take());
        assert_eq!(d.unmask(), Some(false), "latched events merge into one");
    }

    #[test]
    fn unmask_of_a_queued_port_keeps_it_masked() {
        let mut d = Delivery::default();
        d.arrive(1);
        assert_eq!(d.unmask(), None);
        d.arrive(1);
        assert!(d.take());
        assert_eq!(
            d.unmask(),
            Some(true),
            "the event that came while queued is kept"
        );
        assert!(d.take());
    }

    #[test]
    fn nothing_arrives_for_zero_events() {
        let mut d = Delivery::default();
        d.arrive(0);
        assert!(!d.is_queued());
        assert_eq!(d.unmask(), None);
    }
}
