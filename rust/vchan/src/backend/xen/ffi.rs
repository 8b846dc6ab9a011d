//! Xen's stable tool libraries, loaded at run time.
//!
//! Nothing here needs Xen to build: `libxengnttab.so.1` (grant maps and
//! shares), `libxenevtchn.so.1` and `libxenstore.so.4` are opened with
//! `dlopen` the first time the xen backend is asked for, every function we
//! call is resolved then, once, into a process-global table ([`lib`]), and
//! the libraries stay loaded until the process exits. A missing library or
//! symbol is an [`Error::BackendUnavailable`] carrying `dlerror`'s text.
//!
//! Signatures follow `/usr/include/xengnttab.h`, `xenevtchn.h` and
//! `xenstore.h` (Xen 4.17).

use std::ffi::{c_char, c_int, c_uint, c_ulong, c_void, CStr};
use std::io;
use std::sync::OnceLock;

use crate::error::{Error, Result};

/// The error for a failed `*_open`: Xen itself is missing (no device or
/// socket: not a Xen domain, or no xenstored) is
/// [`Error::BackendUnavailable`]; anything else (out of descriptors, ...)
/// is [`Error::Io`].
pub(crate) fn open_error(what: &str, e: io::Error) -> Error {
    match e.raw_os_error() {
        Some(libc::ENOENT | libc::ENODEV | libc::ENXIO | libc::ECONNREFUSED) => {
            Error::BackendUnavailable(format!(
                "{what} failed: {e} (not running in a Xen domain, or xenstored is not running?)"
            ))
        }
        _ => Error::Io(io::Error::new(e.kind(), format!("{what} failed: {e}"))),
    }
}

/// `struct xentoollog_logger` (we always pass NULL: log to stderr).
pub type Logger = c_void;
/// `xengnttab_handle`.
pub type GntTabHandle = c_void;
/// `xengntshr_handle`.
pub type GntShrHandle = c_void;
/// `xenevtchn_handle`.
pub type EvtchnHandle = c_void;
/// `struct xs_handle`.
pub type XsHandle = c_void;
/// `xs_transaction_t`.
pub type XsTransaction = u32;

/// `XBT_NULL`: no transaction.
pub const XBT_NULL: XsTransaction = 0;
/// `XS_PERM_NONE`.
pub const XS_PERM_NONE: c_uint = 0;
/// `XS_PERM_READ`.
pub const XS_PERM_READ: c_uint = 1;

/// `struct xs_permissions` (xenstore_lib.h).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XsPermissions {
    /// Domain id.
    pub id: c_uint,
    /// Bit mask of `XS_PERM_*`.
    pub perms: c_uint,
}

/// Every function of the three libraries that the backend uses.
#[derive(Debug, Clone, Copy)]
pub struct Lib {
    // libxengnttab.so.1: mapping grants of other domains.
    pub xengnttab_open: unsafe extern "C" fn(*mut Logger, c_uint) -> *mut GntTabHandle,
    pub xengnttab_close: unsafe extern "C" fn(*mut GntTabHandle) -> c_int,
    pub xengnttab_map_domain_grant_refs:
        unsafe extern "C" fn(*mut GntTabHandle, u32, u32, *mut u32, c_int) -> *mut c_void,
    pub xengnttab_map_grant_ref_notify:
        unsafe extern "C" fn(*mut GntTabHandle, u32, u32, c_int, u32, u32) -> *mut c_void,
    pub xengnttab_unmap: unsafe extern "C" fn(*mut GntTabHandle, *mut c_void, u32) -> c_int,
    // libxengnttab.so.1: sharing our pages.
    pub xengntshr_open: unsafe extern "C" fn(*mut Logger, c_uint) -> *mut GntShrHandle,
    pub xengntshr_close: unsafe extern "C" fn(*mut GntShrHandle) -> c_int,
    pub xengntshr_share_pages:
        unsafe extern "C" fn(*mut GntShrHandle, u32, c_int, *mut u32, c_int) -> *mut c_void,
    pub xengntshr_share_page_notify:
        unsafe extern "C" fn(*mut GntShrHandle, u32, *mut u32, c_int, u32, u32) -> *mut c_void,
    pub xengntshr_unshare: unsafe extern "C" fn(*mut GntShrHandle, *mut c_void, u32) -> c_int,
    // libxenevtchn.so.1.
    pub xenevtchn_open: unsafe extern "C" fn(*mut Logger, c_uint) -> *mut EvtchnHandle,
    pub xenevtchn_close: unsafe extern "C" fn(*mut EvtchnHandle) -> c_int,
    pub xenevtchn_fd: unsafe extern "C" fn(*mut EvtchnHandle) -> c_int,
    pub xenevtchn_notify: unsafe extern "C" fn(*mut EvtchnHandle, u32) -> c_int,
    pub xenevtchn_bind_unbound_port: unsafe extern "C" fn(*mut EvtchnHandle, u32) -> c_int,
    pub xenevtchn_bind_interdomain: unsafe extern "C" fn(*mut EvtchnHandle, u32, u32) -> c_int,
    pub xenevtchn_unbind: unsafe extern "C" fn(*mut EvtchnHandle, u32) -> c_int,
    pub xenevtchn_pending: unsafe extern "C" fn(*mut EvtchnHandle) -> c_int,
    pub xenevtchn_unmask: unsafe extern "C" fn(*mut EvtchnHandle, u32) -> c_int,
    // libxenstore.so.4.
    pub xs_open: unsafe extern "C" fn(c_ulong) -> *mut XsHandle,
    pub xs_close: unsafe extern "C" fn(*mut XsHandle),
    pub xs_read: unsafe extern "C" fn(
        *mut XsHandle,
        XsTransaction,
        *const c_char,
        *mut c_uint,
    ) -> *mut c_void,
    pub xs_write: unsafe extern "C" fn(
        *mut XsHandle,
        XsTransaction,
        *const c_char,
        *const c_void,
        c_uint,
    ) -> bool,
    pub xs_rm: unsafe extern "C" fn(*mut XsHandle, XsTransaction, *const c_char) -> bool,
    pub xs_directory: unsafe extern "C" fn(
        *mut XsHandle,
        XsTransaction,
        *const c_char,
        *mut c_uint,
    ) -> *mut *mut c_char,
    pub xs_set_permissions: unsafe extern "C" fn(
        *mut XsHandle,
        XsTransaction,
        *const c_char,
        *mut XsPermissions,
        c_uint,
    ) -> bool,
    pub xs_transaction_start: unsafe extern "C" fn(*mut XsHandle) -> XsTransaction,
    pub xs_transaction_end: unsafe extern "C" fn(*mut XsHandle, XsTransaction, bool) -> bool,
}

/// The xenstore watch functions, for a peer domain's death (`death.rs`).
/// Loaded apart from [`Lib`]: xensim's `libxenstore` has none of
/// `xs_fileno` (no domain dies there), and the backend works without them.
#[derive(Debug, Clone, Copy)]
pub struct WatchLib {
    pub xs_fileno: unsafe extern "C" fn(*mut XsHandle) -> c_int,
    pub xs_watch: unsafe extern "C" fn(*mut XsHandle, *const c_char, *const c_char) -> bool,
    pub xs_check_watch: unsafe extern "C" fn(*mut XsHandle) -> *mut *mut c_char,
}

/// File names of the libraries (their stable sonames).
pub const LIBXENGNTTAB: &CStr = c"libxengnttab.so.1";
/// See [`LIBXENGNTTAB`].
pub const LIBXENEVTCHN: &CStr = c"libxenevtchn.so.1";
/// See [`LIBXENGNTTAB`].
pub const LIBXENSTORE: &CStr = c"libxenstore.so.4";

/// The text of the last `dlerror`, or `fallback`.
fn dlerror_text(fallback: &str) -> String {
    // SAFETY: dlerror has no preconditions; it returns NULL or a C string
    // valid until the next dl* call on this thread, which we copy at once.
    let msg = unsafe { libc::dlerror() };
    if msg.is_null() {
        fallback.to_owned()
    } else {
        // SAFETY: non-NULL, NUL-terminated (see above).
        unsafe { CStr::from_ptr(msg) }
            .to_string_lossy()
            .into_owned()
    }
}

/// A library opened for good (never closed: the function table refers to
/// it for the life of the process).
#[derive(Debug, Clone, Copy)]
pub struct Dl(*mut c_void);

impl Dl {
    /// `dlopen(name, RTLD_NOW | RTLD_LOCAL)`.
    pub fn open(name: &CStr) -> std::result::Result<Dl, String> {
        // SAFETY: name is a valid C string; loading runs the library's
        // constructors, which is what using the library means.
        let h = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if h.is_null() {
            Err(dlerror_text(&format!(
                "{}: cannot be loaded",
                name.to_string_lossy()
            )))
        } else {
            Ok(Dl(h))
        }
    }

    /// The address of symbol `name`, as a function pointer of type `F`.
    ///
    /// # Safety
    /// `F` must be an `extern "C"` function pointer type matching the C
    /// declaration of `name`.
    pub unsafe fn sym<F: Copy>(&self, name: &CStr) -> std::result::Result<F, String> {
        assert_eq!(
            std::mem::size_of::<F>(),
            std::mem::size_of::<*mut c_void>(),
            "symbols resolve to function pointers"
        );
        // SAFETY: clear a stale error first so that a NULL below is ours.
        unsafe { libc::dlerror() };
        // SAFETY: self.0 is a live handle from dlopen (never closed), name
        // a valid C string.
        let p = unsafe { libc::dlsym(self.0, name.as_ptr()) };
        if p.is_null() {
            return Err(dlerror_text(&format!(
                "undefined symbol: {}",
                name.to_string_lossy()
            )));
        }
        // SAFETY: F is a function pointer type of the same size (asserted
        // above) whose signature the caller vouches for; p is non-NULL.
        Ok(unsafe { std::mem::transmute_copy::<*mut c_void, F>(&p) })
    }
}

macro_rules! resolve {
    ($lib:ident { $($dl:ident => [$($name:ident),* $(,)?]),* $(,)? }) => {
        $lib {
            $($(
                // SAFETY: the field's type is the C prototype of the symbol
                // of the same name (see the headers cited above).
                $name: unsafe { $dl.sym(cstr_of(concat!(stringify!($name), "\0")))? },
            )*)*
        }
    };
}

fn cstr_of(s: &'static str) -> &'static CStr {
    // The macro appends exactly one NUL to an identifier.
    CStr::from_bytes_with_nul(s.as_bytes()).unwrap_or(c"")
}

impl Lib {
    /// Open the three libraries and resolve every function.
    fn load() -> std::result::Result<Lib, String> {
        let gnt = Dl::open(LIBXENGNTTAB)?;
        let evt = Dl::open(LIBXENEVTCHN)?;
        let xs = Dl::open(LIBXENSTORE)?;
        Ok(resolve!(Lib {
            gnt => [
                xengnttab_open,
                xengnttab_close,
                xengnttab_map_domain_grant_refs,
                xengnttab_map_grant_ref_notify,
                xengnttab_unmap,
                xengntshr_open,
                xengntshr_close,
                xengntshr_share_pages,
                xengntshr_share_page_notify,
                xengntshr_unshare,
            ],
            evt => [
                xenevtchn_open,
                xenevtchn_close,
                xenevtchn_fd,
                xenevtchn_notify,
                xenevtchn_bind_unbound_port,
                xenevtchn_bind_interdomain,
                xenevtchn_unbind,
                xenevtchn_pending,
                xenevtchn_unmask,
            ],
            xs => [
                xs_open,
                xs_close,
                xs_read,
                xs_write,
                xs_rm,
                xs_directory,
                xs_set_permissions,
                xs_transaction_start,
                xs_transaction_end,
            ],
        }))
    }
}

impl WatchLib {
    fn load() -> std::result::Result<WatchLib, String> {
        // The library is already loaded (by `lib`): this only finds it.
        let xs = Dl::open(LIBXENSTORE)?;
        Ok(resolve!(WatchLib {
            xs => [xs_fileno, xs_watch, xs_check_watch],
        }))
    }
}

// SAFETY: the table holds function pointers (and nothing else); the
// libraries they point into stay loaded for the life of the process.
unsafe impl Send for Lib {}
// SAFETY: as above; the table is never mutated after loading.
unsafe impl Sync for Lib {}

/// The process-global function table, loaded on first use. The outcome of
/// the first attempt is kept: a failure is reported the same way every
/// time.
pub fn lib() -> Result<&'static Lib> {
    static LIB: OnceLock<std::result::Result<Lib, String>> = OnceLock::new();
    LIB.get_or_init(Lib::load)
        .as_ref()
        .map_err(|e| Error::BackendUnavailable(e.clone()))
}

// SAFETY: as for `Lib`.
unsafe impl Send for WatchLib {}
// SAFETY: as for `Lib`.
unsafe impl Sync for WatchLib {}

/// The watch functions, if this `libxenstore` has them (after [`lib`]
/// succeeded).
pub fn watch_lib() -> Option<&'static WatchLib> {
    static WATCH: OnceLock<Option<WatchLib>> = OnceLock::new();
    WATCH.get_or_init(|| WatchLib::load().ok()).as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_library_is_an_error_with_dlerror_text() {
        let e = Dl::open(c"libvchan-no-such-library.so.7").unwrap_err();
        assert!(e.contains("libvchan-no-such-library.so.7"), "{e}");
    }

    #[test]
    fn missing_symbol_is_an_error_with_dlerror_text() {
        let libc = Dl::open(c"libc.so.6").unwrap();
        // SAFETY: never called; the type only needs to be a fn pointer.
        let e =
            unsafe { libc.sym::<unsafe extern "C" fn()>(c"xengnttab_open_no_such") }.unwrap_err();
        assert!(e.contains("xengnttab_open_no_such"), "{e}");
        // SAFETY: getpid's C prototype is `pid_t getpid(void)`.
        let getpid =
            unsafe { libc.sym::<unsafe extern "C" fn() -> libc::pid_t>(c"getpid") }.unwrap();
        // SAFETY: getpid has no preconditions.
        assert_eq!(unsafe { getpid() }, std::process::id() as libc::pid_t);
    }
}
