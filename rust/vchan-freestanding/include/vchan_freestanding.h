/* vchan_freestanding.h: the C ABI of libvchan_freestanding.a, the Xen vchan
 * ring core (vchan-rs) for freestanding code: no libc, no allocation, no
 * threads. Built from rust/vchan-freestanding; checked against it by
 * rust/vchan-freestanding/tests/archive.rs.
 *
 * You bring the memory and the event channel; the archive moves bytes and
 * tells you when to signal the peer.
 *
 * Server:
 *   orders = vchan_fs_server_orders(read_min, write_min);
 *   share one page, and vchan_fs_ring_pages(left order) pages for the left
 *   ring and vchan_fs_ring_pages(right order) for the right one (orders are
 *   packed: left = orders & 0xff, right = (orders >> 8) & 0xff; 0 pages means
 *   the ring is inside the shared page);
 *   vchan_fs_server_init(page, orders, grants, n);  left refs, then right refs
 *   vchan_fs_attach(st, page, orders, left, left_len, right, right_len);
 *   publish the page's grant ref and your event channel port.
 * Client:
 *   map the page; orders = vchan_fs_client_orders(page);
 *   vchan_fs_client_grants(page, orders, refs, n); map the left ring
 *   read-write and the right ring read-only;
 *   vchan_fs_attach(st, page, orders | VCHAN_FS_CLIENT, ...) returns 1:
 *   signal the server.
 * Then read/write/send/recv/peek/consume; whenever a result has
 * VCHAN_FS_NOTIFY set, signal the peer. To wait for data (or room), call
 * vchan_fs_data_ready_or_arm (vchan_fs_buffer_space_or_arm): if it still
 * reports too little, sleep until the event channel fires, then retry.
 * vchan_fs_close, signal the peer, then unshare/unmap.
 *
 * Every function returns an intptr_t: negative is one of VCHAN_FS_E_*.
 * Calls on one endpoint must not overlap. */
#ifndef VCHAN_FREESTANDING_H
#define VCHAN_FREESTANDING_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes (8-byte aligned) of memory holding one endpoint. */
#define VCHAN_FS_STATE_SIZE 256
/* Or'ed into packed orders for a client's vchan_fs_attach. */
#define VCHAN_FS_CLIENT 0x10000

/* Result codes. */
#define VCHAN_FS_E_CLOSED (-1)    /* not open: closed, or never set up */
#define VCHAN_FS_E_PROTOCOL (-2)  /* the peer broke the vchan protocol */
#define VCHAN_FS_E_TOO_LARGE (-3) /* packet > ring, or ring > 1 MiB */
#define VCHAN_FS_E_INVALID (-4)   /* bad buffer, ring memory, grants, orders */

/* The peer's state (vchan_fs_state). */
#define VCHAN_FS_STATE_WAITING 0
#define VCHAN_FS_STATE_CONNECTED 1
#define VCHAN_FS_STATE_EXITED 2

/* Results of operations that move bytes: bytes << 1 | notify. */
#define VCHAN_FS_BYTES(r) ((r) >> 1)
#define VCHAN_FS_NOTIFY(r) ((r)&1)
/* Result of vchan_fs_peek: offset in the read ring << 32 | length. */
#define VCHAN_FS_PEEK_OFFSET(r) ((size_t)((uint64_t)(r) >> 32))
#define VCHAN_FS_PEEK_LEN(r) ((size_t)((uint64_t)(r)&0xffffffffu))

/* One endpoint: VCHAN_FS_STATE_SIZE bytes of your memory. */
typedef struct vchan_fs vchan_fs;

size_t vchan_fs_state_size(void);

/* Set-up. */
intptr_t vchan_fs_server_orders(size_t read_min, size_t write_min);
intptr_t vchan_fs_ring_pages(intptr_t order);
intptr_t vchan_fs_ring_offset(intptr_t order);
intptr_t vchan_fs_server_init(uint8_t *page, intptr_t orders,
                              const uint32_t *grants, size_t ngrants);
intptr_t vchan_fs_client_orders(uint8_t *page);
intptr_t vchan_fs_client_grants(uint8_t *page, intptr_t orders,
                                uint32_t *out, size_t n);
intptr_t vchan_fs_attach(vchan_fs *st, uint8_t *page, intptr_t orders,
                         uint8_t *left, size_t left_len, uint8_t *right,
                         size_t right_len);

/* I/O: bytes << 1 | notify. */
intptr_t vchan_fs_write(vchan_fs *st, const uint8_t *buf, size_t len);
intptr_t vchan_fs_send(vchan_fs *st, const uint8_t *buf, size_t len);
intptr_t vchan_fs_read(vchan_fs *st, uint8_t *buf, size_t len);
intptr_t vchan_fs_recv(vchan_fs *st, uint8_t *buf, size_t len);
/* Zero-copy read: peek, then consume (returns notify, 0 or 1). */
intptr_t vchan_fs_peek(vchan_fs *st);
intptr_t vchan_fs_consume(vchan_fs *st, size_t n);
/* Zero-copy write: free_span (offset in the write ring << 32 | length, as
   peek's), fill it, then produce (returns notify, 0 or 1). */
intptr_t vchan_fs_free_span(vchan_fs *st);
intptr_t vchan_fs_produce(vchan_fs *st, size_t n);

/* Queries. */
intptr_t vchan_fs_data_ready(vchan_fs *st);
intptr_t vchan_fs_buffer_space(vchan_fs *st);
intptr_t vchan_fs_data_ready_or_arm(vchan_fs *st, size_t want);
intptr_t vchan_fs_buffer_space_or_arm(vchan_fs *st, size_t want);
/* Spin until data_ready/buffer_space reaches want, at most polls looks
   with a spin-loop hint between them: the last count. */
intptr_t vchan_fs_poll_data(vchan_fs *st, size_t want, size_t polls);
intptr_t vchan_fs_poll_space(vchan_fs *st, size_t want, size_t polls);
intptr_t vchan_fs_state(vchan_fs *st);
intptr_t vchan_fs_read_size(vchan_fs *st);
intptr_t vchan_fs_write_size(vchan_fs *st);

/* Your platform saw the peer die (process or domain): mark it exited in
   its live byte, as Xen's unmap notification would. 1 if it had not
   closed first, else 0. */
intptr_t vchan_fs_peer_gone(vchan_fs *st);

/* Close: 1 (signal the peer) the first time, then 0. */
intptr_t vchan_fs_close(vchan_fs *st);

#ifdef __cplusplus
}
#endif

#endif
