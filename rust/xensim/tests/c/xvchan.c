/*
 * A libxenvchan peer for the xensim tests, built against Debian's
 * libxen-dev and run on Debian's libxenvchan under vchan-xensim.
 *
 *   xvchan server DOMID PATH READ_MIN WRITE_MIN MODE
 *   xvchan client DOMID PATH MODE
 *
 * MODE:
 *   stream        full duplex: stdin -> vchan, vchan -> stdout; after stdin
 *                 ends and all of it is in the ring, keep reading until the
 *                 peer closes and the ring is empty; then close, exit 0.
 *   stream-close  as stream, but close as soon as stdin ended and all of
 *                 it is in the ring (the peer must still read all of it).
 *   echo-packets  blocking packets: receive a 4-byte little-endian length
 *                 packet, then a packet of that length, send both back;
 *                 length 0 ends (it is echoed, then close).
 * A server prints "listening" on stderr once its rendezvous is published.
 */
#include <errno.h>
#include <fcntl.h>
#include <libxenvchan.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>

#define BUF (1 << 20)

static void die(const char *what)
{
	fprintf(stderr, "xvchan: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int stream(struct libxenvchan *c, int close_early)
{
	static char in[BUF], out[BUF];
	size_t inlen = 0, outlen = 0;
	int in_eof = 0;
	int vfd = libxenvchan_fd_for_select(c);

	c->blocking = 0;
	fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
	fcntl(1, F_SETFL, fcntl(1, F_GETFL) | O_NONBLOCK);
	for (;;) {
		int progress = 0, n;

		if (!in_eof && inlen < BUF) {
			n = read(0, in + inlen, BUF - inlen);
			if (n > 0) {
				inlen += n;
				progress = 1;
			} else if (n == 0) {
				in_eof = 1;
				progress = 1;
			} else if (errno != EAGAIN) {
				die("read stdin");
			}
		}
		if (inlen) {
			n = libxenvchan_write(c, in, inlen);
			if (n < 0)
				die("libxenvchan_write");
			if (n > 0) {
				memmove(in, in + n, inlen - n);
				inlen -= n;
				progress = 1;
			}
		}
		if (in_eof && !inlen && close_early)
			break;
		while (outlen < BUF && libxenvchan_data_ready(c) > 0) {
			n = libxenvchan_read(c, out + outlen, BUF - outlen);
			if (n < 0)
				die("libxenvchan_read");
			if (n == 0)
				break;
			outlen += n;
			progress = 1;
		}
		if (outlen) {
			n = write(1, out, outlen);
			if (n > 0) {
				memmove(out, out + n, outlen - n);
				outlen -= n;
				progress = 1;
			} else if (n < 0 && errno != EAGAIN) {
				die("write stdout");
			}
		}
		if (!libxenvchan_is_open(c) && libxenvchan_data_ready(c) == 0) {
			/* The peer closed and everything it wrote is read. */
			if (!outlen)
				break;
		}
		if (!progress) {
			fd_set r, w;
			int max = vfd;

			FD_ZERO(&r);
			FD_ZERO(&w);
			FD_SET(vfd, &r);
			if (!in_eof && inlen < BUF)
				FD_SET(0, &r);
			if (outlen) {
				FD_SET(1, &w);
				if (max < 1)
					max = 1;
			}
			if (select(max + 1, &r, &w, NULL, NULL) < 0 && errno != EINTR)
				die("select");
			if (FD_ISSET(vfd, &r))
				libxenvchan_wait(c);
		}
	}
	fcntl(1, F_SETFL, fcntl(1, F_GETFL) & ~O_NONBLOCK);
	while (outlen) {
		int n = write(1, out, outlen);
		if (n <= 0)
			die("write stdout");
		memmove(out, out + n, outlen - n);
		outlen -= n;
	}
	return 0;
}

static int echo_packets(struct libxenvchan *c)
{
	static char buf[BUF];

	c->blocking = 1;
	for (;;) {
		uint32_t len;
		unsigned char hdr[4];

		if (libxenvchan_recv(c, hdr, 4) != 4)
			die("recv length");
		len = hdr[0] | hdr[1] << 8 | hdr[2] << 16 | (uint32_t)hdr[3] << 24;
		if (len > BUF) {
			fprintf(stderr, "xvchan: packet of %u bytes\n", len);
			return 1;
		}
		if (len && libxenvchan_recv(c, buf, len) != (int)len)
			die("recv packet");
		if (libxenvchan_send(c, hdr, 4) != 4)
			die("send length");
		if (!len)
			return 0;
		if (libxenvchan_send(c, buf, len) != (int)len)
			die("send packet");
	}
}

int main(int argc, char **argv)
{
	struct libxenvchan *c;
	const char *mode;
	int rc;

	if (argc == 7 && !strcmp(argv[1], "server")) {
		c = libxenvchan_server_init(NULL, atoi(argv[2]), argv[3],
					    strtoul(argv[4], NULL, 0),
					    strtoul(argv[5], NULL, 0));
		if (!c)
			die("libxenvchan_server_init");
		fprintf(stderr, "listening\n");
		mode = argv[6];
		/* Wait for the client. */
		while (libxenvchan_is_open(c) == 2)
			if (libxenvchan_wait(c))
				die("libxenvchan_wait");
	} else if (argc == 5 && !strcmp(argv[1], "client")) {
		c = libxenvchan_client_init(NULL, atoi(argv[2]), argv[3]);
		if (!c)
			die("libxenvchan_client_init");
		mode = argv[4];
	} else {
		fprintf(stderr, "usage: xvchan server DOMID PATH READ_MIN WRITE_MIN MODE\n"
				"       xvchan client DOMID PATH MODE\n");
		return 2;
	}
	if (!strcmp(mode, "stream"))
		rc = stream(c, 0);
	else if (!strcmp(mode, "stream-close"))
		rc = stream(c, 1);
	else if (!strcmp(mode, "echo-packets"))
		rc = echo_packets(c);
	else {
		fprintf(stderr, "xvchan: unknown mode %s\n", mode);
		rc = 2;
	}
	libxenvchan_close(c);
	return rc;
}
