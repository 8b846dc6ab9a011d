//! Shared memory (a [`Region`]: pages we share, or pages of the peer we
//! mapped) as an OCaml bigarray that owns it.
//!
//! `Bigarray.Array1.sub` (and `Cstruct.to_bigarray`) share memory with the
//! original array; for `CAML_BA_EXTERNAL` arrays nothing ties their
//! lifetimes together. So the ring is instead a bigarray with its own
//! custom operations — those of the runtime's bigarrays, but our finaliser —
//! and the `CAML_BA_MAPPED_FILE` flag, exactly the scheme of
//! `Unix.map_file`: the runtime then shares a reference-counted proxy
//! between the array and its sub-arrays (which inherit our operations), and
//! the last one finalised frees the region, unsharing or unmapping the
//! memory. So no view into a ring can dangle: memory stays while any
//! view of it is reachable, even after the endpoint closed.

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void};
use std::sync::{Mutex, OnceLock};

use ocaml::sys::custom_operations;
use ocaml::sys::Value;

use vchan::backend::Region;

use crate::ocaml_value::header;

/// A region, as the bigarray that owns it holds it.
pub(crate) type Mem = Box<dyn Region>;

/// `struct caml_ba_proxy` (ocaml-sys keeps its fields private).
#[repr(C)]
struct Proxy {
    refcount: isize,
    data: *mut c_void,
    size: usize,
}

const CAML_BA_UINT8: isize = 0x03;
const CAML_BA_C_LAYOUT: isize = 0;
const CAML_BA_MAPPED_FILE: isize = 0x400;

extern "C" {
    fn caml_alloc_custom_mem(ops: *const Ops, size: usize, mem: usize) -> Value;
    fn caml_ba_compare(v1: Value, v2: Value) -> c_int;
    fn caml_ba_hash(v: Value) -> isize;
    fn caml_ba_serialize(v: Value, wsize_32: *mut usize, wsize_64: *mut usize);
    fn caml_ba_deserialize(dst: *mut c_void) -> usize;
}

/// The operations table, in static memory as the runtime requires.
#[repr(transparent)]
struct Ops(custom_operations);

// SAFETY: the table is immutable and only holds pointers to static data
// and functions.
unsafe impl Sync for Ops {}

static OPS: Ops = Ops(custom_operations {
    // Marshalled rings come back as ordinary bigarrays.
    identifier: c"_bigarr02".as_ptr() as *const c_char,
    finalize: Some(finalize),
    compare: Some(caml_ba_compare),
    hash: Some(caml_ba_hash),
    serialize: Some(caml_ba_serialize),
    deserialize: Some(caml_ba_deserialize),
    compare_ext: None,
    fixed_length: std::ptr::null(),
});

/// Memory address -> the `Box<Mem>` owning it (both as addresses).
fn owners() -> &'static Mutex<HashMap<usize, usize>> {
    static OWNERS: OnceLock<Mutex<HashMap<usize, usize>>> = OnceLock::new();
    OWNERS.get_or_init(Default::default)
}

/// Finaliser of the ring and of its sub-arrays: drop a reference; the last
/// one frees the region.
unsafe extern "C" fn finalize(v: Value) {
    // SAFETY: the runtime calls this with one of our bigarrays.
    let (data, proxy) = unsafe { ((*header(v)).data, (*header(v)).proxy) };
    let data = if proxy.is_null() {
        data
    } else {
        let p = proxy as *mut Proxy;
        // SAFETY: the runtime allocated the proxy with malloc and shares it
        // between the arrays of this ring; finalisers run one at a time
        // (runtime lock held).
        unsafe {
            (*p).refcount -= 1;
            if (*p).refcount != 0 {
                return;
            }
            let d = (*p).data.cast::<u8>();
            libc::free(p.cast());
            d
        }
    };
    let owner = owners()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&(data as usize));
    if let Some(h) = owner {
        // SAFETY: the region was registered by `own` and is freed only
        // here, once: its last array is gone, so no OCaml code can reach
        // it any more. A panic must not unwind into the runtime.
        let _ = std::panic::catch_unwind(|| drop(unsafe { Box::from_raw(h as *mut Mem) }));
    }
}

/// `region_buf r`: the memory of region `r` (made by a sharing or
/// mapping stub) as a `(char, int8_unsigned_elt, c_layout)
/// Bigarray.Array1.t`, which owns the region from now on (see the module
/// documentation). Called once per region, after its grant refs were read.
/// Allocates: not a `[@@noalloc]` external.
///
/// # Safety
///
/// `r` is a tagged OCaml int holding the address of a live `Box<Mem>` not
/// yet owned by a bigarray.
#[no_mangle]
pub unsafe extern "C" fn vchan_rs_region_buf(r: Value) -> Value {
    let addr = (r >> 1) as usize;
    // SAFETY: per this function's contract.
    let region = unsafe { &*(addr as *const Mem) };
    let (data, len) = (region.as_ptr() as usize, region.len());
    owners()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(data, addr);
    let size = std::mem::size_of::<crate::ocaml_value::BigarrayHeader>();
    // SAFETY: allocating a custom block of `size` bytes with static
    // operations, runtime lock held (we were called from OCaml); `mem`
    // tells the GC how much memory the block holds on to.
    let v = unsafe { caml_alloc_custom_mem(&OPS, size, len) };
    // SAFETY: `v` is a fresh custom block with room for a `caml_ba_array`
    // of one dimension; it is filled in before any other allocation.
    unsafe {
        let b = header(v);
        (*b).data = data as *mut u8;
        (*b).num_dims = 1;
        (*b).flags = CAML_BA_UINT8 | CAML_BA_C_LAYOUT | CAML_BA_MAPPED_FILE;
        (*b).proxy = std::ptr::null_mut();
        (*b).dim0 = len as isize;
    }
    v
}
