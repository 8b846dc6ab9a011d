/* Both ends of a vchan in one process over the C ABI of
 * libvchan_freestanding.a: a server and a client over in-memory pages,
 * moving data both ways (streams past the rings' wrap point, packets,
 * zero-copy peek/consume), the notify decisions, and close. Exits 0 on
 * success; prints what failed otherwise. */
#include "vchan_freestanding.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c)                                                           \
  do {                                                                     \
    if (!(c)) {                                                            \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
      exit(1);                                                             \
    }                                                                      \
  } while (0)

static _Alignas(4096) uint8_t page[4096];
/* The left ring in its own page (order 12). */
static _Alignas(4096) uint8_t left_ring[4096];
static _Alignas(8) uint8_t srv_mem[VCHAN_FS_STATE_SIZE];
static _Alignas(8) uint8_t cli_mem[VCHAN_FS_STATE_SIZE];

/* Move `len` pattern bytes from `from` to `to`, alternating writes and
 * reads of odd sizes so that both rings wrap many times. */
static void pump(vchan_fs *from, vchan_fs *to, size_t len, uint8_t seed) {
  static uint8_t out[3000], in[3000];
  size_t sent = 0, got = 0;
  while (got < len) {
    size_t n = len - sent < 2999 ? len - sent : 2999;
    for (size_t i = 0; i < n; i++) out[i] = (uint8_t)(seed + sent + i);
    intptr_t w = vchan_fs_write(from, out, n);
    CHECK(w >= 0);
    sent += VCHAN_FS_BYTES(w);
    intptr_t r = vchan_fs_read(to, in, 1733);
    CHECK(r >= 0);
    for (size_t i = 0; i < (size_t)VCHAN_FS_BYTES(r); i++)
      CHECK(in[i] == (uint8_t)(seed + got + i));
    got += VCHAN_FS_BYTES(r);
    CHECK(got <= sent);
  }
}

int main(void) {
  vchan_fs *srv = (vchan_fs *)srv_mem, *cli = (vchan_fs *)cli_mem;
  CHECK(vchan_fs_state_size() == VCHAN_FS_STATE_SIZE);

  /* Server: read ring 4 KiB (its own page), write ring 2 KiB (in page). */
  intptr_t orders = vchan_fs_server_orders(4096, 2048);
  CHECK(orders == (12 | 11 << 8));
  CHECK(vchan_fs_ring_pages(12) == 1 && vchan_fs_ring_pages(11) == 0);
  CHECK(vchan_fs_ring_offset(11) == 2048);
  uint32_t grants[1] = {0x1234};
  CHECK(vchan_fs_server_init(page, orders, grants, 0) == VCHAN_FS_E_INVALID);
  CHECK(vchan_fs_server_init(page, orders, grants, 1) == 0);
  CHECK(vchan_fs_attach(srv, page, orders, left_ring, 4096, NULL, 0) == 0);
  CHECK(vchan_fs_state(srv) == VCHAN_FS_STATE_WAITING);

  /* Client: validate the page, read the grants, "map" the ring. */
  intptr_t seen = vchan_fs_client_orders(page);
  CHECK(seen == orders);
  uint32_t refs[1] = {0};
  CHECK(vchan_fs_client_grants(page, seen, refs, 1) == 1 && refs[0] == 0x1234);
  CHECK(vchan_fs_attach(cli, page, seen | VCHAN_FS_CLIENT, NULL, 0, NULL, 0) ==
        VCHAN_FS_E_INVALID); /* the left ring's memory is missing */
  CHECK(vchan_fs_attach(cli, page, seen | VCHAN_FS_CLIENT, left_ring, 4096,
                        NULL, 0) == 1);
  CHECK(vchan_fs_state(srv) == VCHAN_FS_STATE_CONNECTED);
  CHECK(vchan_fs_read_size(srv) == 4096 && vchan_fs_write_size(srv) == 2048);
  CHECK(vchan_fs_read_size(cli) == 2048 && vchan_fs_write_size(cli) == 4096);

  /* Both ways, well past the wrap points. */
  pump(cli, srv, 1 << 20, 7);
  pump(srv, cli, 1 << 20, 99);

  /* Notify decisions: the server waits for data (arms), the client's next
   * write must say "signal"; a write nobody waits for must not. */
  CHECK(vchan_fs_data_ready_or_arm(srv, 1) == 0);
  intptr_t w = vchan_fs_write(cli, (const uint8_t *)"ping", 4);
  CHECK(VCHAN_FS_BYTES(w) == 4 && VCHAN_FS_NOTIFY(w) == 1);
  w = vchan_fs_write(cli, (const uint8_t *)"!", 1);
  CHECK(VCHAN_FS_BYTES(w) == 1 && VCHAN_FS_NOTIFY(w) == 0);

  /* Zero-copy read of what is there. */
  intptr_t p = vchan_fs_peek(srv);
  CHECK(p >= 0 && VCHAN_FS_PEEK_LEN(p) > 0);
  CHECK(VCHAN_FS_PEEK_OFFSET(p) + VCHAN_FS_PEEK_LEN(p) <= 4096);
  CHECK(memcmp(left_ring + VCHAN_FS_PEEK_OFFSET(p), "ping!",
               VCHAN_FS_PEEK_LEN(p)) == 0);
  size_t first = VCHAN_FS_PEEK_LEN(p);
  CHECK(vchan_fs_consume(srv, first) >= 0);
  if (first < 5) {
    p = vchan_fs_peek(srv);
    CHECK(VCHAN_FS_PEEK_OFFSET(p) == 0 && VCHAN_FS_PEEK_LEN(p) == 5 - first);
    CHECK(vchan_fs_consume(srv, 5 - first) >= 0);
  }
  CHECK(vchan_fs_consume(srv, 1) == VCHAN_FS_E_INVALID);

  /* Packets: all or nothing; larger than the ring never. */
  uint8_t pkt[2048], back[2048];
  for (size_t i = 0; i < sizeof pkt; i++) pkt[i] = (uint8_t)(i * 31);
  CHECK(VCHAN_FS_BYTES(vchan_fs_send(srv, pkt, 2048)) == 2048);
  CHECK(VCHAN_FS_BYTES(vchan_fs_send(srv, pkt, 1)) == 0); /* full */
  CHECK(vchan_fs_send(srv, pkt, 2049) == VCHAN_FS_E_TOO_LARGE);
  CHECK(VCHAN_FS_BYTES(vchan_fs_recv(cli, back, 2048)) == 2048);
  CHECK(memcmp(pkt, back, 2048) == 0);
  CHECK(VCHAN_FS_BYTES(vchan_fs_recv(cli, back, 1)) == 0); /* empty */

  /* A buffer inside the ring a copy uses is refused (no aliasing). */
  CHECK(vchan_fs_read(srv, left_ring + 10, 10) == VCHAN_FS_E_INVALID);
  CHECK(vchan_fs_write(cli, left_ring + 10, 10) == VCHAN_FS_E_INVALID);

  /* Close: the peer sees it; the data written before stays readable. */
  CHECK(VCHAN_FS_BYTES(vchan_fs_write(srv, (const uint8_t *)"bye", 3)) == 3);
  CHECK(vchan_fs_close(srv) == 1);
  CHECK(vchan_fs_close(srv) == 0);
  CHECK(vchan_fs_write(srv, pkt, 1) == VCHAN_FS_E_CLOSED);
  CHECK(vchan_fs_state(cli) == VCHAN_FS_STATE_EXITED);
  uint8_t bye[8];
  CHECK(VCHAN_FS_BYTES(vchan_fs_read(cli, bye, 8)) == 3 &&
        memcmp(bye, "bye", 3) == 0);
  CHECK(vchan_fs_close(cli) == 1);

  /* A hostile page: impossible orders are refused by the client. */
  page[16] = 9;
  CHECK(vchan_fs_client_orders(page) == VCHAN_FS_E_PROTOCOL);
  puts("two_pages: ok");
  return 0;
}
