//! The C ABI (declared in `include/vchan_freestanding.h`).
//!
//! # Results
//! Every function returns an `intptr_t`: a negative code
//! ([`crate::boundary::CODES`]) on failure, else a value documented per
//! function. Operations that move bytes return `bytes << 1 | notify`: when
//! `notify` is set the caller must signal the peer on the event channel
//! now (the peer asked to be told of this progress). Nothing here blocks,
//! allocates, signals, or calls anything outside the archive.
//!
//! # Memory
//! The caller owns it all. `page` is the 4096-byte shared control page
//! (4-byte aligned), rings of order >= 12 are `2^order` contiguous bytes of
//! their own, and `st` is [`STATE_SIZE`] bytes, 8-byte aligned, holding one
//! endpoint once [`vchan_fs_attach`] succeeded. They must stay valid until
//! [`vchan_fs_close`]; afterwards the archive touches none of them. Calls on
//! one `st` must not overlap (it is not locked).

use core::mem::{align_of, size_of, MaybeUninit};

use vchan_core::setup::{self, External};
use vchan_core::{Channel, Error, LiveState, Orders, RawPage, RawRing, Transfer};

use crate::boundary::{CLIENT_FLAG, E_CLOSED, E_INVALID, E_PROTOCOL, E_TOO_LARGE, STATE_SIZE};
use crate::ocaml_boundary::{STATE_CONNECTED, STATE_EXITED, STATE_WAITING};

type Ch = Channel<RawPage, RawRing>;

/// "vchan-fs": the endpoint in this state memory is open.
const OPEN: u64 = 0x7376_2d6e_6168_6376;
/// The endpoint was closed.
const CLOSED: u64 = 0x6465_736f_6c63_2d76;

#[repr(C, align(8))]
struct State {
    magic: u64,
    ch: MaybeUninit<Ch>,
}

const _: () = assert!(size_of::<State>() <= STATE_SIZE);
const _: () = assert!(align_of::<State>() == 8);

/// The code of a core error.
pub fn code_of(e: Error) -> isize {
    match e {
        e if e.is_protocol_violation() => E_PROTOCOL,
        Error::RingTooLarge { .. } | Error::PacketTooLarge { .. } => E_TOO_LARGE,
        _ => E_INVALID,
    }
}

fn transfer(r: Result<Transfer, Error>) -> isize {
    match r {
        Ok(t) => ((t.bytes as isize) << 1) | isize::from(t.notify),
        Err(e) => code_of(e),
    }
}

fn count(r: Result<usize, Error>) -> isize {
    match r {
        Ok(n) => n as isize,
        Err(e) => code_of(e),
    }
}

/// Pack an order pair as `left | right << 8`.
fn pack(o: Orders) -> isize {
    isize::from(o.left()) | (isize::from(o.right()) << 8)
}

/// Unpack (and validate) an order pair the caller passes back.
fn unpack(packed: isize) -> Result<(Orders, bool), isize> {
    if packed < 0 || packed & !(0xffff | CLIENT_FLAG) != 0 {
        return Err(E_INVALID);
    }
    let (left, right) = ((packed & 0xff) as u16, ((packed >> 8) & 0xff) as u16);
    let orders = Orders::validate(left, right).map_err(|_| E_INVALID)?;
    Ok((orders, packed & CLIENT_FLAG != 0))
}

/// # Safety
/// `page` is null or points to a 4096-byte page valid for the call.
unsafe fn raw_page(page: *mut u8) -> Result<RawPage, isize> {
    // SAFETY: per this function's contract.
    unsafe { RawPage::new(page) }.ok_or(E_INVALID)
}

/// The open endpoint in `st`.
///
/// # Safety
/// `st` is null or points to [`STATE_SIZE`] bytes the caller lets us use
/// exclusively for the call.
unsafe fn open<'a>(st: *mut u8) -> Result<&'a mut Ch, isize> {
    if st.is_null() || st as usize % 8 != 0 {
        return Err(E_INVALID);
    }
    let s = st.cast::<State>();
    // SAFETY: aligned, in bounds (STATE_SIZE >= size_of State), exclusive
    // for the call per the contract; `ch` is initialised whenever `magic`
    // is OPEN (only `vchan_fs_attach` writes OPEN, with the channel).
    unsafe {
        if (*s).magic != OPEN {
            return Err(E_CLOSED);
        }
        Ok((*s).ch.assume_init_mut())
    }
}

/// A caller's buffer, as a slice, refused when it overlaps the ring a
/// copy goes to or comes from (they must not alias): the write ring for a
/// source (`into_ring`; a view of the read ring may be written, as an echo
/// does), both rings for a destination.
///
/// # Safety
/// `buf` points to `len` bytes valid for the call (or `len` is 0).
unsafe fn buffer<'a>(
    ch: &Ch,
    buf: *mut u8,
    len: usize,
    into_ring: bool,
) -> Result<&'a mut [u8], isize> {
    if len == 0 {
        return Ok(&mut []);
    }
    if buf.is_null() {
        return Err(E_INVALID);
    }
    let overlaps = |base: *mut u8, size: usize| {
        let (a, b) = (buf as usize, base as usize);
        a < b.wrapping_add(size) && b < a.wrapping_add(len)
    };
    if (!into_ring && overlaps(ch.read_ring().as_ptr(), ch.read_size()))
        || overlaps(ch.write_ring().as_ptr(), ch.write_size())
    {
        return Err(E_INVALID);
    }
    // SAFETY: per this function's contract; not aliased with the rings.
    Ok(unsafe { core::slice::from_raw_parts_mut(buf, len) })
}

/// Bytes of memory one endpoint's state needs ([`STATE_SIZE`]).
#[no_mangle]
pub extern "C" fn vchan_fs_state_size() -> usize {
    STATE_SIZE
}

/// The ring orders Xen's C server picks for `read_min` (left ring) and
/// `write_min` (right ring) bytes: `left | right << 8`, or
/// `VCHAN_FS_E_TOO_LARGE` above 1 MiB.
#[no_mangle]
pub extern "C" fn vchan_fs_server_orders(read_min: usize, write_min: usize) -> isize {
    match Orders::for_server(read_min, write_min) {
        Ok(o) => pack(o),
        Err(e) => code_of(e),
    }
}

/// Pages to share (server) or map (client) for a ring of `order`: 0 for
/// the in-page orders 10 and 11; `VCHAN_FS_E_INVALID` outside `10..=20`.
#[no_mangle]
pub extern "C" fn vchan_fs_ring_pages(order: isize) -> isize {
    match u8::try_from(order).ok().and_then(setup::ring_pages) {
        Some(n) => n as isize,
        None => E_INVALID,
    }
}

/// Offset in the shared page of an in-page ring of `order` (1024 or 2048),
/// 0 for a ring in its own pages, `VCHAN_FS_E_INVALID` outside `10..=20`.
#[no_mangle]
pub extern "C" fn vchan_fs_ring_offset(order: isize) -> isize {
    match u8::try_from(order).ok().and_then(setup::ring_pages) {
        Some(_) => setup::ring_offset_in_page(order as u8).map_or(0, |o| o as isize),
        None => E_INVALID,
    }
}

/// Server set-up of a freshly shared `page`: zero it, write `orders` (as
/// [`vchan_fs_server_orders`] returned), the live bytes and notify bits,
/// and `grants[]`: the refs of the left ring's pages then the right ring's
/// (`ngrants` must be their total). 0, or a code.
///
/// # Safety
/// `page` points to a writable 4096-byte page; `grants` to `ngrants` refs
/// (or `ngrants` is 0).
#[no_mangle]
pub unsafe extern "C" fn vchan_fs_server_init(
    page: *mut u8,
    orders: isize,
    grants: *const u32,
    ngrants: usize,
) -> isize {
    let r = (|| {
        // SAFETY: per this function's contract.
        let raw = unsafe { raw_page(page)? };
        let (orders, _) = unpack(orders)?;
        let grants = if ngrants == 0 {
            &[][..]
        } else if grants.is_null() {
            return Err(E_INVALID);
        } else {
            // SAFETY: per this function's contract (caller memory, not
            // shared with the peer).
            unsafe { core::slice::from_raw_parts(grants, ngrants) }
        };
        let split = orders.left_placement().pages().min(grants.len());
        let (left, right) = grants.split_at(split);
        setup::init_server(&raw, orders, left, right).map_err(code_of)
    })();
    r.map_or_else(|e| e, |()| 0)
}

/// Client validation of a mapped `page`: its orders, read once and
/// validated, packed as `left | right << 8`, or `VCHAN_FS_E_PROTOCOL`.
///
/// # Safety
/// `page` points to a readable and writable 4096-byte page.
#[no_mangle]
pub unsafe extern "C" fn vchan_fs_client_orders(page: *mut u8) -> isize {
    // SAFETY: per this function's contract.
    match unsafe { raw_page(page) } {
        Ok(raw) => match setup::read_orders(&raw) {
            Ok(o) => pack(o),
            Err(e) => code_of(e),
        },
        Err(e) => e,
    }
}

/// Client: read the grant refs of the left ring's pages then the right
/// ring's, once, into `out` (`n` must be their total). The count, or a code.
/// Map the left ring writable, the right ring read-only.
///
/// # Safety
/// `page` as for [`vchan_fs_client_orders`]; `out` points to `n` writable
/// refs (or `n` is 0).
#[no_mangle]
pub unsafe extern "C" fn vchan_fs_client_grants(
    page: *mut u8,
    orders: isize,
    out: *mut u32,
    n: usize,
) -> isize {
    let r = (|| {
        // SAFETY: per this function's contract.
        let raw = unsafe { raw_page(page)? };
        let (orders, _) = unpack(orders)?;
        let out = if n == 0 {
            &mut [][..]
        } else if out.is_null() {
            return Err(E_INVALID);
        } else {
            // SAFETY: per this function's contract.
            unsafe { core::slice::from_raw_parts_mut(out, n) }
        };
        let split = orders.left_placement().pages().min(out.len());
        let (left, right) = out.split_at_mut(split);
        setup::read_client_grants(&raw, orders, left, right).map_err(code_of)?;
        Ok(n as isize)
    })();
    r.unwrap_or_else(|e| e)
}

/// Set up the endpoint in `st` over `page` and its rings. `orders` as
/// packed by [`vchan_fs_server_orders`]/[`vchan_fs_client_orders`], with
/// `VCHAN_FS_CLIENT` or'ed in for a client. `left`/`right` (with their
/// lengths) are the memory of rings in their own pages and must be
/// null/0 for in-page rings. A server's page must have been set up by
/// [`vchan_fs_server_init`]. A client is announced to the server (its
/// live byte set): the result is then 1, "signal the peer"; else 0, or a
/// code.
///
/// # Safety
/// `st` points to [`STATE_SIZE`] writable bytes; `page`, `left` and
/// `right` to memory that stays valid until [`vchan_fs_close`] (see the
/// module documentation).
#[no_mangle]
pub unsafe extern "C" fn vchan_fs_attach(
    st: *mut u8,
    page: *mut u8,
    orders: isize,
    left: *mut u8,
    left_len: usize,
    right: *mut u8,
    right_len: usize,
) -> isize {
    if st.is_null() || st as usize % 8 != 0 {
        return E_INVALID;
    }
    let r = (|| {
        // SAFETY: per this function's contract.
        let raw = unsafe { raw_page(page)? };
        let (orders, client) = unpack(orders)?;
        let ext = |base: *mut u8, len: usize| {
            (!base.is_null() || len != 0).then_some(External { base, len })
        };
        let (l, r) = (ext(left, left_len), ext(right, right_len));
        // SAFETY: per this function's contract, the memory outlives the
        // channel (until close).
        let ch = unsafe {
            if client {
                setup::client_channel(raw, orders, l, r)
            } else {
                setup::server_channel(raw, orders, l, r)
            }
        }
        .map_err(code_of)?;
        Ok((ch, client))
    })();
    match r {
        Ok((ch, client)) => {
            // SAFETY: `st` is aligned and has room for a State (checked /
            // per the contract); writing does not read the old contents.
            unsafe {
                st.cast::<State>().write(State {
                    magic: OPEN,
                    ch: MaybeUninit::new(ch),
                })
            };
            isize::from(client)
        }
        Err(e) => e,
    }
}

macro_rules! with_open {
    ($st:expr, |$ch:ident| $body:expr) => {
        // SAFETY: per the calling function's contract.
        match unsafe { open($st) } {
            Ok($ch) => $body,
            Err(e) => e,
        }
    };
}

/// Stream write: copy what fits of `buf[0..len)` (maybe nothing):
/// `bytes << 1 | notify`, or a code.
///
/// # Safety
/// `st` is an endpoint's state memory; `buf` points to `len` readable
/// bytes.
#[no_mangle]
pub unsafe extern "C" fn vchan_fs_write(st: *mut u8, buf: *const u8, len: usize) -> isize {
    with_open!(st, |ch| {
        // SAFETY: per this function's contract; only read.
        match unsafe { buffer(ch, buf.cast_mut(), len, true) } {
            Ok(b) => transfer(ch.write(b)),
            Err(e) => e,
        }
    })
}

/// Packet send: all of `buf[0..len)` or nothing (`bytes` 0 when it does
/// not fit now; `VCHAN_FS_E_TOO_LARGE` when it never can).
///
/// # Safety
/// As [`vchan_fs_write`].
#[no_mangle]
pub unsafe extern "C" fn vchan_fs_send(st: *mut u8, buf: *const u8, len: usize) -> isize {
    with_open!(st, |ch| {
        // SAFETY: per this function's contract; only read.
        match unsafe { buffer(ch, buf.cast_mut(), len, true) } {
            Ok(b) => transfer(ch.send(b)),
            Err(e) => e,
        }
    })
}

/// Stream read: copy up to `len` readable bytes into `buf`.
///
/// # Safety
/// `st` is an endpoint's state memory; `buf` points to `len` writable
/// bytes.
#[no_mangle]
pub unsafe extern "C" fn vchan_fs_read(st: *mut u8, buf: *mut u8, len: usize) -> isize {
    with_open!(st, |ch| {
        // SAFETY: per this function's contract.
        match unsafe { buffer(ch, buf, len, false) } {
            Ok(b) => transfer(ch.read(b)),
            Err(e) => e,
        }
    })
}

/// Packet receive: exactly `len` bytes into `buf`, or nothing.
///
/// # Safety
/// As [`vchan_fs_read`].
#[no_mangle]
pub unsafe extern "C" fn vchan_fs_recv(st: *mut u8, buf: *mut u8, len: usize) -> isize {
    with_open!(st, |ch| {
        // SAFETY: per this function's contract.
        match unsafe { buffer(ch, buf, len, false) } {
            Ok(b) => transfer(ch.recv(b)),
            Err(e) => e,
        }
    })
}

/// Zero-copy read: the contiguous readable bytes at our consumer index,
/// as `offset << 32 | length` (offset in the read ring; length may be 0).
/// They stay put until [`vchan_fs_consume`].
///
/// # Safety
/// `st` is an endpoint's state memory.
#[no_mangle]
pub unsafe extern "C" fn vchan_fs_peek(st: *mut u8) -> isize {
    with_open!(st, |ch| match ch.peek() {
        // Both are below 2^21.
        Ok(s) => ((s.offset as isize) << 32) | s.len as isize,
        Err(e) => code_of(e),
    })
}

/// Release `n` bytes seen with [`vchan_fs_peek`]: `notify` (0 or 1), or a
/// code.
///
/// # Safety
/// `st` is an endpoint's state memory.
#[no_mangle]
pub unsafe extern "C" fn vchan_fs_consume(st: *mut u8, n: usize) -> isize {
    with_open!(st, |ch| match ch.consume(n) {
        Ok(t) => isize::from(t.notify),
        Err(e) => code_of(e),
    })
}

/// Zero-copy write: the contiguous free bytes at our producer index, as
/// `offset << 32 | length` (offset in the write ring; length may be 0).
/// Fill them, then publish them with [`vchan_fs_produce`].
///
/// # Safety
/// `st` is an endpoint's state memory.
#[no_mangle]
pub unsafe extern "C" fn vchan_fs_free_span(st: *mut u8) -> isize {
    with_open!(st, |ch| match ch.free_span() {
        // Both are below 2^21.
        Ok(s) => ((s.offset as isize) << 32) | s.len as isize,
        Err(e) => code_of(e),
    })
}

/// Publish `n` bytes written into the span [`vchan_fs_free_span`] gave:
/// `notify` (0 or 1), or a code.
///
/// # Safety
/// `st` is an endpoint's state memory.
#[no_mangle]
pub unsafe extern "C" fn vchan_fs_produce(st: *mut u8, n: usize) -> isize {
    with_open!(st, |ch| match ch.produce(n) {
        Ok(t) => isize::from(t.notify),
        Err(e) => code_of(e),
    })
}

/// The caller's platform saw the peer go away (its process or domain
/// died): mark it exited in its live byte, as Xen's unmap notification
/// would. 1 when it had not closed first (it vanished), else 0; or a code.
///
/// # Safety
/// `st` is an endpoint's state memory.
#[no_mangle]
pub unsafe extern "C" fn vchan_fs_peer_gone(st: *mut u8) -> isize {
    with_open!(st, |ch| isize::from(ch.mark_peer_gone()))
}

/// Bytes readable now.
///
/// # Safety
/// `st` is an endpoint's state memory.
#[no_mangle]
pub unsafe extern "C" fn vchan_fs_data_ready(st: *mut u8) -> isize {
    with_open!(st, |ch| count(ch.data_ready()))
}

/// Bytes writable now.
///
/// # Safety
/// `st` is an endpoint's state memory.
#[no_mangle]
pub unsafe extern "C" fn vchan_fs_buffer_space(st: *mut u8) -> isize {
    with_open!(st, |ch| count(ch.buffer_space()))
}

/// [`vchan_fs_data_ready`]; when below `want`, ask the peer to signal us
/// after it writes, and look again: a caller that still sees fewer than
/// `want` bytes may wait for the event without losing a wake-up.
///
/// # Safety
/// `st` is an endpoint's state memory.
#[no_mangle]
pub unsafe extern "C" fn vchan_fs_data_ready_or_arm(st: *mut u8, want: usize) -> isize {
    with_open!(st, |ch| count(ch.data_ready_or_arm(want)))
}

/// [`vchan_fs_buffer_space`]; when below `want`, ask the peer to signal us
/// after it reads, and look again.
///
/// # Safety
/// `st` is an endpoint's state memory.
#[no_mangle]
pub unsafe extern "C" fn vchan_fs_buffer_space_or_arm(st: *mut u8, want: usize) -> isize {
    with_open!(st, |ch| count(ch.buffer_space_or_arm(want)))
}

/// Spin on [`vchan_fs_data_ready`] until it reaches `want`, for at most
/// `polls` looks with a spin-loop hint between them (a peer on another core
/// is met without events, and the hint keeps the looks from hammering the
/// cache line the peer writes): the last count, or a code.
///
/// # Safety
/// `st` is an endpoint's state memory.
#[no_mangle]
pub unsafe extern "C" fn vchan_fs_poll_data(st: *mut u8, want: usize, polls: usize) -> isize {
    with_open!(st, |ch| poll(polls, want, || ch.data_ready()))
}

/// [`vchan_fs_poll_data`] for [`vchan_fs_buffer_space`].
///
/// # Safety
/// `st` is an endpoint's state memory.
#[no_mangle]
pub unsafe extern "C" fn vchan_fs_poll_space(st: *mut u8, want: usize, polls: usize) -> isize {
    with_open!(st, |ch| poll(polls, want, || ch.buffer_space()))
}

fn poll(polls: usize, want: usize, look: impl Fn() -> Result<usize, Error>) -> isize {
    let mut n = 0;
    for _ in 0..polls.max(1) {
        n = match look() {
            Ok(n) => n,
            Err(e) => return code_of(e),
        };
        if n >= want {
            break;
        }
        core::hint::spin_loop();
    }
    n as isize
}

/// The peer's state from its live byte: 0 waiting, 1 connected, 2 exited;
/// `VCHAN_FS_E_PROTOCOL` for any other byte.
///
/// # Safety
/// `st` is an endpoint's state memory.
#[no_mangle]
pub unsafe extern "C" fn vchan_fs_state(st: *mut u8) -> isize {
    with_open!(st, |ch| match ch.peer_state() {
        Ok(LiveState::Waiting) => STATE_WAITING,
        Ok(LiveState::Connected) => STATE_CONNECTED,
        Ok(LiveState::Exited) => STATE_EXITED,
        Err(e) => code_of(e),
    })
}

/// Size of the ring we read.
///
/// # Safety
/// `st` is an endpoint's state memory.
#[no_mangle]
pub unsafe extern "C" fn vchan_fs_read_size(st: *mut u8) -> isize {
    with_open!(st, |ch| ch.read_size() as isize)
}

/// Size of the ring we write.
///
/// # Safety
/// `st` is an endpoint's state memory.
#[no_mangle]
pub unsafe extern "C" fn vchan_fs_write_size(st: *mut u8) -> isize {
    with_open!(st, |ch| ch.write_size() as isize)
}

/// Close: mark us exited in our live byte. Returns 1 (signal the peer) the
/// first time, 0 afterwards. From then on the page and rings are never
/// touched again: the caller may unshare or unmap them.
///
/// # Safety
/// `st` is an endpoint's state memory.
#[no_mangle]
pub unsafe extern "C" fn vchan_fs_close(st: *mut u8) -> isize {
    // SAFETY: per this function's contract.
    match unsafe { open(st) } {
        Ok(ch) => {
            ch.close();
            // SAFETY: `st` is an open State (checked by `open`).
            unsafe { (*st.cast::<State>()).magic = CLOSED };
            1
        }
        Err(E_CLOSED) => 0,
        Err(e) => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[repr(C, align(4096))]
    struct Page([u8; 4096]);

    #[test]
    fn live_offsets_are_the_cores() {
        use crate::boundary::{CLIENT_LIVE, SERVER_LIVE};
        use vchan_core::Role;
        assert_eq!(SERVER_LIVE, Role::Server.live_offset());
        assert_eq!(CLIENT_LIVE, Role::Client.live_offset());
    }

    #[test]
    fn both_ways_in_page() {
        let mut page = Box::new(Page([0; 4096]));
        let p = page.0.as_mut_ptr();
        let orders = vchan_fs_server_orders(1000, 2000);
        assert_eq!(orders, 10 | 11 << 8);
        let mut srv = [0u64; STATE_SIZE / 8];
        let mut cli = [0u64; STATE_SIZE / 8];
        let (s, c) = (srv.as_mut_ptr().cast::<u8>(), cli.as_mut_ptr().cast::<u8>());
        // SAFETY: all memory is ours and outlives the endpoints.
        unsafe {
            assert_eq!(vchan_fs_server_init(p, orders, core::ptr::null(), 0), 0);
            let nul = core::ptr::null_mut();
            assert_eq!(vchan_fs_attach(s, p, orders, nul, 0, nul, 0), 0);
            assert_eq!(vchan_fs_state(s), 0);
            let seen = vchan_fs_client_orders(p);
            assert_eq!(seen, orders);
            assert_eq!(vchan_fs_attach(c, p, seen | CLIENT_FLAG, nul, 0, nul, 0), 1);
            assert_eq!(vchan_fs_state(s), 1);
            let r = vchan_fs_write(c, b"hello".as_ptr(), 5);
            assert_eq!(r >> 1, 5);
            let mut buf = [0u8; 8];
            assert_eq!(vchan_fs_read(s, buf.as_mut_ptr(), 8) >> 1, 5);
            assert_eq!(&buf[..5], b"hello");
            // A buffer inside a ring is refused.
            assert_eq!(vchan_fs_read(s, p.add(1024), 4), E_INVALID);
            assert_eq!(vchan_fs_close(c), 1);
            assert_eq!(vchan_fs_close(c), 0);
            assert_eq!(vchan_fs_write(c, b"x".as_ptr(), 1), E_CLOSED);
            assert_eq!(vchan_fs_state(s), 2);
        }
        drop(page);
    }

    #[test]
    fn bad_arguments() {
        assert_eq!(vchan_fs_server_orders(1 << 21, 0), E_TOO_LARGE);
        assert_eq!(vchan_fs_ring_pages(9), E_INVALID);
        assert_eq!(vchan_fs_ring_pages(16), 16);
        assert_eq!(vchan_fs_ring_offset(11), 2048);
        assert_eq!(vchan_fs_ring_offset(12), 0);
        let mut page = Box::new(Page([0; 4096]));
        let p = page.0.as_mut_ptr();
        // SAFETY: all memory is ours.
        unsafe {
            // 10/10 is not a valid pair; 12 needs one grant.
            assert_eq!(
                vchan_fs_server_init(p, 10 | 10 << 8, core::ptr::null(), 0),
                E_INVALID
            );
            assert_eq!(
                vchan_fs_server_init(p, 12 | 11 << 8, core::ptr::null(), 0),
                E_INVALID
            );
            assert_eq!(vchan_fs_client_orders(p), E_PROTOCOL);
            let mut st = [0u64; STATE_SIZE / 8];
            assert_eq!(vchan_fs_data_ready(st.as_mut_ptr().cast()), E_CLOSED);
        }
        drop(page);
    }
}
