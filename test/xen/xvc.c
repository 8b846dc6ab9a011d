/* xvc: a peer over Xen's C libxenvchan for make test-xen.
 *
 * usage: xvc server|client DOMID PATH [-r READ_MIN] [-w WRITE_MIN] ACTION
 *   send         copy stdin to the vchan (stream), then close once the
 *                peer read all of it
 *   recv         copy the vchan to stdout until the peer closes
 *   echo         copy stdin to the vchan, then the vchan to stdout until
 *                the peer closes (a peer that sends back what it read)
 *   api N M      the exchange rust/vchan/examples/xen_peer.rs answers:
 *                N packets (sizes and bytes from packet_size/pattern) sent
 *                and their echoes checked; M pattern bytes sent; M pattern
 *                bytes received and checked
 * The server's ring sizes are READ_MIN and WRITE_MIN (default 4096), as
 * libxenvchan_server_init rounds them; it prints them on stderr.
 * Exit status 0 only when everything was moved (and checked). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <libxenvchan.h>

/* On SIGTERM (a case's `timeout`), the shared page's state on stderr
 * before exiting: which side a hang left waiting, and for what. */
static struct libxenvchan *dumped;

static void dump_and_exit(int sig)
{
    char b[256];
    struct vchan_interface *r = dumped ? dumped->ring : NULL;
    int n = r ? snprintf(b, sizeof b,
                         "xvc: signal %d: left prod %u cons %u, right prod %u cons %u, "
                         "cli_live %u srv_live %u cli_notify %#x srv_notify %#x\n",
                         sig, r->left.prod, r->left.cons, r->right.prod, r->right.cons,
                         r->cli_live, r->srv_live, r->cli_notify, r->srv_notify)
              : snprintf(b, sizeof b, "xvc: signal %d before the vchan was up\n", sig);
    if (n > 0 && write(2, b, (size_t)n) < 0)
        _exit(125);
    _exit(124);
}

static size_t packet_size(unsigned i) { return 1 + (i * 37u) % 1000u; }
static unsigned char pattern(size_t k) { return (unsigned char)((k * 131u) >> 3); }

static int fail(const char *what)
{
    fprintf(stderr, "xvc: %s\n", what);
    return 1;
}

static int write_all(struct libxenvchan *v, const unsigned char *p, size_t n)
{
    while (n) {
        int w = libxenvchan_write(v, p, n);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int api(struct libxenvchan *v, unsigned n, size_t m)
{
    unsigned char out[1000], in[1000];
    for (unsigned i = 0; i < n; i++) {
        size_t s = packet_size(i);
        for (size_t j = 0; j < s; j++)
            out[j] = (unsigned char)(i + j);
        if (libxenvchan_send(v, out, s) != (int)s)
            return fail("packet send failed");
        if (libxenvchan_recv(v, in, s) != (int)s)
            return fail("packet echo not received");
        if (memcmp(in, out, s))
            return fail("packet echo differs");
    }
    for (size_t k = 0; k < m;) {
        size_t c = m - k < sizeof out ? m - k : sizeof out;
        for (size_t j = 0; j < c; j++)
            out[j] = pattern(k + j);
        if (write_all(v, out, c))
            return fail("stream write failed");
        k += c;
    }
    for (size_t k = 0; k < m;) {
        size_t c = m - k < sizeof in ? m - k : sizeof in;
        int r = libxenvchan_read(v, in, c);
        if (r <= 0)
            return fail("stream read ended early");
        for (int j = 0; j < r; j++)
            if (in[j] != pattern(k + (size_t)j))
                return fail("stream bytes differ");
        k += (size_t)r;
    }
    printf("api ok %u packets, %zu bytes each way\n", n, m);
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGTERM, dump_and_exit);
    if (argc < 5)
        return fail("usage: xvc server|client DOMID PATH [-r N] [-w N] send|recv|api N M");
    int server = !strcmp(argv[1], "server");
    int domid = atoi(argv[2]);
    const char *path = argv[3];
    size_t rmin = 4096, wmin = 4096;
    int a = 4;
    while (a + 1 < argc && argv[a][0] == '-') {
        size_t val = strtoul(argv[a + 1], NULL, 0);
        if (!strcmp(argv[a], "-r"))
            rmin = val;
        else if (!strcmp(argv[a], "-w"))
            wmin = val;
        else
            return fail("unknown option");
        a += 2;
    }
    if (a >= argc)
        return fail("no action");
    const char *action = argv[a];

    struct libxenvchan *v = NULL;
    if (server) {
        v = libxenvchan_server_init(NULL, domid, path, rmin, wmin);
    } else {
        /* The server may not be there yet: retry for up to a minute. */
        for (int tries = 0; !v && tries < 600; tries++) {
            v = libxenvchan_client_init(NULL, domid, path);
            if (!v)
                usleep(100000);
        }
    }
    if (!v)
        return fail(server ? "libxenvchan_server_init failed" : "libxenvchan_client_init failed");
    v->blocking = 1;
    dumped = v;
    if (server)
        fprintf(stderr, "xvc: server rings: read %d, write %d\n",
                1 << v->read.order, 1 << v->write.order);

    int rc = 0;
    int echo = !strcmp(action, "echo");
    if (!strcmp(action, "send") || echo) {
        unsigned char buf[65536];
        ssize_t n;
        while ((n = read(0, buf, sizeof buf)) > 0)
            if (write_all(v, buf, (size_t)n)) {
                rc = fail("vchan write failed");
                break;
            }
        if (n < 0)
            rc = fail("stdin read failed");
    }
    if (!strcmp(action, "send")) {
        /* Close only once the peer connected and read everything: a close
         * removes a server's rendezvous, and a ring large enough for the
         * whole input would otherwise let a server close before its client
         * found it. */
        while (!rc && libxenvchan_is_open(v) &&
               libxenvchan_buffer_space(v) < (1 << v->write.order))
            usleep(1000);
    } else if (!strcmp(action, "recv") || echo) {
        unsigned char buf[65536];
        int n;
        while (!rc && (n = libxenvchan_read(v, buf, sizeof buf)) > 0)
            if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n) {
                rc = fail("stdout write failed");
                break;
            }
        if (fflush(stdout))
            rc = fail("stdout write failed");
    } else if (!strcmp(action, "api") && a + 2 < argc) {
        rc = api(v, (unsigned)atoi(argv[a + 1]), strtoul(argv[a + 2], NULL, 0));
    } else {
        rc = fail("unknown action");
    }
    libxenvchan_close(v);
    return rc;
}
