/*
 * Direct checks of the simulated Xen libraries, compiled against Debian's
 * headers and linked with Debian's -lxenstore -lxenevtchn -lxengnttab
 * -lxenctrl, run under vchan-xensim (so xensim is what gets loaded).
 * Expects VCHAN_DOMID=5. Prints "ok" and exits 0, or names the failed
 * check and exits 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <xenctrl.h>
#include <xenevtchn.h>
#include <xengnttab.h>
#include <xenstore.h>

#define CHECK(c)                                                         \
	do {                                                             \
		if (!(c)) {                                              \
			fprintf(stderr, "abi.c:%d: check failed: %s (errno %d)\n", \
				__LINE__, #c, errno);                    \
			exit(1);                                         \
		}                                                        \
	} while (0)

static int readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	return poll(&p, 1, ms) == 1;
}

static void store(void)
{
	struct xs_handle *xs = xs_open(0);
	unsigned int len, num;
	char *v, **dir, **w;
	xs_transaction_t t;

	CHECK(xs);
	v = xs_read(xs, XBT_NULL, "domid", &len);
	CHECK(v && len == 1 && !strcmp(v, "5"));
	free(v);

	/* Relative paths live under /local/domain/<domid>. */
	CHECK(xs_write(xs, XBT_NULL, "data/a", "hello", 5));
	v = xs_read(xs, XBT_NULL, "/local/domain/5/data/a", &len);
	CHECK(v && len == 5 && !memcmp(v, "hello", 5) && v[5] == 0);
	free(v);

	/* Transactions: invisible until the end, then all there. */
	t = xs_transaction_start(xs);
	CHECK(t != XBT_NULL);
	CHECK(xs_write(xs, t, "/local/domain/5/data/b", "1", 1));
	CHECK(xs_write(xs, t, "/local/domain/5/data/c", "22", 2));
	v = xs_read(xs, t, "/local/domain/5/data/b", &len);
	CHECK(v && len == 1);
	free(v);
	errno = 0;
	CHECK(!xs_read(xs, XBT_NULL, "/local/domain/5/data/b", &len) && errno == ENOENT);
	CHECK(xs_transaction_end(xs, t, false));
	v = xs_read(xs, XBT_NULL, "/local/domain/5/data/c", &len);
	CHECK(v && len == 2 && !strcmp(v, "22"));
	free(v);
	/* An aborted transaction changes nothing. */
	t = xs_transaction_start(xs);
	CHECK(xs_write(xs, t, "/local/domain/5/data/d", "x", 1));
	CHECK(xs_transaction_end(xs, t, true));
	CHECK(!xs_read(xs, XBT_NULL, "/local/domain/5/data/d", &len));

	dir = xs_directory(xs, XBT_NULL, "/local/domain/5/data", &num);
	CHECK(dir && num == 3 && !strcmp(dir[0], "a") && !strcmp(dir[1], "b") &&
	      !strcmp(dir[2], "c"));
	free(dir);

	/* Watches fire once when set, then on a change below the path. */
	CHECK(xs_watch(xs, "/local/domain/5/data", "tok"));
	w = xs_read_watch(xs, &num);
	CHECK(w && num == 2 && !strcmp(w[XS_WATCH_PATH], "/local/domain/5/data") &&
	      !strcmp(w[XS_WATCH_TOKEN], "tok"));
	free(w);
	CHECK(xs_write(xs, XBT_NULL, "/local/domain/5/data/a", "bye", 3));
	w = xs_read_watch(xs, &num);
	CHECK(w && !strcmp(w[XS_WATCH_TOKEN], "tok"));
	free(w);
	CHECK(xs_unwatch(xs, "/local/domain/5/data", "tok"));

	CHECK(xs_rm(xs, XBT_NULL, "/local/domain/5/data"));
	CHECK(!xs_read(xs, XBT_NULL, "/local/domain/5/data/a", &len));
	CHECK(!xs_write(xs, XBT_NULL, "/local/../etc", "x", 1));
	xs_close(xs);
}

static void events_and_grants(void)
{
	xenevtchn_handle *a = xenevtchn_open(NULL, 0), *b = xenevtchn_open(NULL, 0);
	xengntshr_handle *shr = xengntshr_open(NULL, 0);
	xengnttab_handle *tab = xengnttab_open(NULL, 0);
	int pa, pb, fa, fb;
	uint32_t refs[3], ref;
	unsigned char *page, *mapped, *ring, *ring_map;

	CHECK(a && b && shr && tab);
	fa = xenevtchn_fd(a);
	fb = xenevtchn_fd(b);
	CHECK(fa >= 0 && fb >= 0 && fa != fb);
	pa = xenevtchn_bind_unbound_port(a, 5);
	CHECK(pa > 0);
	pb = xenevtchn_bind_interdomain(b, 5, pa);
	CHECK(pb > 0 && pb != pa);

	/* Nothing pending: a non-blocking handle says EAGAIN. */
	fcntl(fb, F_SETFL, fcntl(fb, F_GETFL) | O_NONBLOCK);
	errno = 0;
	CHECK(xenevtchn_pending(b) == -1 && errno == EAGAIN);
	CHECK(xenevtchn_notify(a, pa) == 0); /* accepts b's connection too */
	CHECK(readable(fb, 2000));
	CHECK(xenevtchn_pending(b) == pb);
	CHECK(xenevtchn_unmask(b, pb) == 0);
	CHECK(xenevtchn_notify(b, pb) == 0);
	CHECK(readable(fa, 2000));
	CHECK(xenevtchn_pending(a) == pa);
	/* Until unmasked, events on pa do not make the descriptor readable. */
	CHECK(xenevtchn_notify(b, pb) == 0);
	CHECK(!readable(fa, 50));
	CHECK(xenevtchn_unmask(a, pa) == 0);
	CHECK(readable(fa, 2000));
	CHECK(xenevtchn_pending(a) == pa);
	CHECK(xenevtchn_unmask(a, pa) == 0);

	/* Masking as Linux's evtchn driver does it: a port returned by
	 * xenevtchn_pending stays masked; an event meanwhile is not lost but
	 * delivered once it is unmasked (vchan-socket-proxy relies on it). */
	CHECK(xenevtchn_notify(b, pb) == 0);
	CHECK(xenevtchn_notify(b, pb) == 0);
	CHECK(readable(fa, 2000));
	CHECK(xenevtchn_pending(a) == pa);
	CHECK(!readable(fa, 50));
	CHECK(xenevtchn_unmask(a, pa) == 0);
	CHECK(readable(fa, 0));
	CHECK(xenevtchn_pending(a) == pa);
	CHECK(xenevtchn_unmask(a, pa) == 0);
	CHECK(!readable(fa, 50));
	CHECK(xenevtchn_notify(b, pb) == 0);
	CHECK(readable(fa, 2000));
	CHECK(xenevtchn_pending(a) == pa);
	CHECK(xenevtchn_notify(b, pb) == 0);
	CHECK(!readable(fa, 50));
	CHECK(xenevtchn_unmask(a, pa) == 0);
	CHECK(readable(fa, 2000));
	CHECK(xenevtchn_pending(a) == pa);
	CHECK(xenevtchn_unmask(a, pa) == 0);
	CHECK(xenevtchn_unmask(a, pa + 1000) == -1 && errno == EINVAL);

	/* A shared page with an unmap-notify on port pa, mapped back. */
	page = xengntshr_share_page_notify(shr, 5, &ref, 1, 21, pa);
	CHECK(page && ref != 0);
	ring = xengntshr_share_pages(shr, 5, 3, refs, 1);
	CHECK(ring && refs[0] && refs[1] == refs[0] + 1 && refs[2] == refs[0] + 2);
	mapped = xengnttab_map_grant_ref_notify(tab, 5, ref, PROT_READ | PROT_WRITE, 22, pb);
	CHECK(mapped && mapped != page);
	page[100] = 42;
	CHECK(mapped[100] == 42);
	ring_map = xengnttab_map_domain_grant_refs(tab, 2, 5, refs + 1, PROT_READ);
	CHECK(ring_map);
	ring[4096 + 7] = 9;
	ring[8192 + 7] = 10;
	CHECK(ring_map[7] == 9 && ring_map[4096 + 7] == 10);
	errno = 0;
	CHECK(!xengnttab_map_grant_ref(tab, 5, refs[0] + 100, PROT_READ));

	/* The peer of port pb goes away: xensim clears byte 21 (a's
	 * unmap-notify) in b's mapping and makes pb pending. */
	page[21] = 1;
	CHECK(mapped[21] == 1);
	CHECK(xenevtchn_close(a) == 0);
	CHECK(readable(fb, 2000));
	CHECK(xenevtchn_pending(b) == pb);
	CHECK(mapped[21] == 0);

	/* libxenvchan munmaps ring buffers itself; closing copes with that. */
	CHECK(munmap(ring, 3 * 4096) == 0);
	CHECK(xengnttab_unmap(tab, mapped, 1) == 0);
	CHECK(xengnttab_unmap(tab, mapped, 1) == -1);
	CHECK(xengntshr_unshare(shr, page, 1) == 0);
	CHECK(xengnttab_close(tab) == 0);
	CHECK(xengntshr_close(shr) == 0);
	CHECK(xenevtchn_close(b) == 0);
}

static void ctrl(void)
{
	xc_interface *xc = xc_interface_open(NULL, NULL, 0);
#ifdef XC_GETINFO_SINGLE
	/* Xen 4.18 and later (the test defines it when libxenctrl has it). */
	xc_domaininfo_t info;

	CHECK(xc);
	memset(&info, 0xff, sizeof info);
	CHECK(xc_domain_getinfo_single(xc, 3, &info) == 0);
	CHECK(info.domain == 3 && (info.flags & XEN_DOMINF_running) &&
	      !(info.flags & (XEN_DOMINF_dying | XEN_DOMINF_shutdown)));
#else
	xc_dominfo_t info;

	CHECK(xc);
	memset(&info, 0xff, sizeof info);
	CHECK(xc_domain_getinfo(xc, 3, 1, &info) == 1);
	CHECK(info.domid == 3 && info.running && !info.dying && !info.shutdown);
#endif
	CHECK(xc_interface_close(xc) == 0);
}

int main(void)
{
	store();
	events_and_grants();
	ctrl();
	printf("ok\n");
	return 0;
}
