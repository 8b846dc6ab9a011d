//! OCaml values as both stub crates read them, without the OCaml runtime:
//! tagged ints, bigarray headers and strings. `rust/vchan-lwt-stubs`
//! includes this file by path (see [`crate::ocaml_boundary`]).

/// An OCaml value (a machine word).
pub type Value = isize;

/// The int a tagged OCaml int holds.
#[inline(always)]
pub fn untag(v: Value) -> isize {
    v >> 1
}

/// `n` as a tagged OCaml int.
#[inline(always)]
pub fn tag(n: isize) -> Value {
    (n << 1) | 1
}

/// `struct caml_ba_array` of the OCaml runtime, with its first dimension.
#[repr(C)]
pub struct BigarrayHeader {
    /// The elements.
    pub data: *mut u8,
    /// Number of dimensions.
    pub num_dims: isize,
    /// Kind, layout and management flags (`CAML_BA_*`).
    pub flags: isize,
    /// The runtime's shared `caml_ba_proxy`, or null.
    pub proxy: *mut u8,
    /// The first dimension.
    pub dim0: isize,
}

/// The header of bigarray `v` (a raw pointer: nothing is read).
pub fn header(v: Value) -> *mut BigarrayHeader {
    // A bigarray is a custom block: field 0 is its operations pointer, the
    // `caml_ba_array` follows.
    (v as *mut usize).wrapping_add(1).cast::<BigarrayHeader>()
}

/// Data pointer and length in elements of a one-dimensional bigarray.
///
/// # Safety
/// `v` is an OCaml bigarray value, alive for the call.
pub unsafe fn bigarray(v: Value) -> Option<(*mut u8, usize)> {
    let h = header(v);
    // SAFETY: per this function's contract, `h` is the header of a live
    // bigarray, which has at least one dimension when `num_dims` >= 1.
    unsafe {
        if (*h).num_dims != 1 {
            return None;
        }
        Some(((*h).data, usize::try_from((*h).dim0).ok()?))
    }
}

/// `ba[off..off + len)` of a `char` bigarray, bounds checked.
///
/// # Safety
/// As [`bigarray`].
pub unsafe fn slice(ba: Value, off: isize, len: isize) -> Option<(*mut u8, usize)> {
    // SAFETY: per this function's contract.
    let (data, dim) = unsafe { bigarray(ba)? };
    let (off, len) = (usize::try_from(off).ok()?, usize::try_from(len).ok()?);
    if off.checked_add(len)? > dim {
        return None;
    }
    Some((data.wrapping_add(off), len))
}

/// The bytes of an OCaml string.
///
/// # Safety
/// `v` is an OCaml string value, alive for the call.
pub unsafe fn string<'a>(v: Value) -> &'a [u8] {
    let p = v as *const u8;
    // SAFETY: a string block is preceded by its header word (size in words
    // above bit 10) and padded so that its last byte is the padding count
    // minus one; the block is immutable and alive for the call.
    unsafe {
        let header = *(p as *const usize).wrapping_sub(1);
        let bytes = (header >> 10) * core::mem::size_of::<usize>();
        if bytes == 0 {
            return &[];
        }
        let pad = usize::from(*p.add(bytes - 1));
        core::slice::from_raw_parts(p, bytes.saturating_sub(pad + 1))
    }
}
