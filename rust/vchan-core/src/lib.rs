//! The ring core of the Xen vchan protocol (`libxenvchan`), byte-compatible
//! with Xen's C library and with mirage/ocaml-vchan.
//!
//! `#![no_std]`, no `alloc`, no libc: this crate only knows the shared
//! page's layout ([`layout`]), the ring orders ([`Orders`]), how a vchan
//! is set up over memory its caller shared or mapped ([`setup`], Xen's
//! `init.c`), and how one endpoint moves bytes through the rings
//! ([`Channel`], Xen's `io.c`). Mapping memory,
//! event channels and the rendezvous store are the business of the
//! `vchan` crate's backends.
//!
//! # Example
//! Both ends of one vchan over memory of this process (a backend would
//! share and map it between domains instead): the server lays out the
//! page, the client reads the ring orders from it, and bytes cross.
//! ```
//! use vchan_core::layout::PAGE_SIZE;
//! use vchan_core::{init_server_page, read_orders, Channel, Orders, RawPage, RawRing};
//!
//! let orders = Orders::for_server(1024, 2048)?; // the server reads 1 KiB, writes 2 KiB rings
//! let mut page = vec![0u64; PAGE_SIZE / 8];
//! let mut left = vec![0u64; (1 << orders.left()) / 8];
//! let mut right = vec![0u64; (1 << orders.right()) / 8];
//! // SAFETY: the buffers outlive both channels (dropped at the end of the
//! // example, in reverse order of declaration), and are 8-byte aligned.
//! let (page, left, right) = unsafe {
//!     (
//!         RawPage::new(page.as_mut_ptr().cast()).expect("aligned"),
//!         RawRing::new(left.as_mut_ptr().cast(), 1 << orders.left()).expect("ring"),
//!         RawRing::new(right.as_mut_ptr().cast(), 1 << orders.right()).expect("ring"),
//!     )
//! };
//! init_server_page(&page, orders);
//! let mut server = Channel::server(page, orders, left, right)?;
//! let mut client = Channel::client(page, read_orders(&page)?, right, left)?;
//!
//! assert_eq!(server.write(b"hello")?.bytes, 5);
//! let mut buf = [0u8; 16];
//! let got = client.read(&mut buf)?;
//! assert_eq!(&buf[..got.bytes], b"hello");
//! # Ok::<(), vchan_core::Error>(())
//! ```
//!
//! # Trust
//! The peer can change any byte of the shared page at any time. The core
//! reads every peer-controlled value at most once per operation (a read or
//! write that the peer's index as last loaded covers does not look again:
//! an index moved back is only seen at the next look), validates it, and
//! reports impossible values as [`Error`]s marked
//! [`is_protocol_violation`](Error::is_protocol_violation). Its own indices
//! and the ring orders are private copies, never re-read from the page.
//!
//! # Memory ordering
//! As in Xen's `io.c`: the reader loads `prod` with acquire before copying
//! data out (or copies out what an earlier acquire load of `prod` covered);
//! the writer publishes `prod` with release after copying data in (into
//! space that an acquire load of `cons`, this call's or an earlier one's,
//! showed free);
//! the reader publishes `cons` with release after copying data out (Xen's C
//! library puts a full barrier there; release already orders the reads
//! before the store). A full barrier separates requesting a notification
//! from re-reading indices, and publishing an index from checking the
//! notify bits. Ring copies of 4 KiB and more are one
//! `rep movsb` on x86-64 (see [`mem`]), whose stores x86 does not reorder
//! with the release store of the index that follows.
#![no_std]
#![warn(missing_docs)]

pub mod channel;
pub mod error;
pub mod layout;
pub mod mem;
pub mod name;
pub mod order;
pub mod setup;
pub mod state;

pub use channel::{default_segment, Channel, Fences, LiveState, Span, Transfer};
pub use error::Error;
pub use layout::Role;
pub use mem::{RawPage, RawRing, RingMem, SharedPage};
pub use order::Orders;
pub use setup::{init_server_page, read_grant, read_orders, write_grant};
