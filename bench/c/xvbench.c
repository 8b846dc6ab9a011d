/*
 * The C side of `vchan-bench`: Xen's libxenvchan (blocking mode) under
 * vchan-xensim, with the arguments and output of the Rust roles
 * (bench/src/role.rs, which says what the modes do):
 *
 *   xvbench server|client RING stream|ping|idle COUNT SIZE
 *
 * The server is domain 0, the client domain 1, both at the bench's PATH.
 * The stream is the bench's pattern (pattern_init): a reader checks the
 * byte at every stream offset that is a multiple of 4096, and the last
 * byte of every read.
 */
#include <errno.h>
#include <libxenvchan.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define PATTERN_LEN 65521 /* prime: no period shared with rings or chunks */
#define SAMPLE 4096
#define PATH "/local/domain/0/data/vchan/1/bench"

typedef unsigned long long u64;
static struct libxenvchan *c;
static unsigned char *pattern; /* PATTERN_LEN + SIZE bytes, wrapping */

static void *must(void *p, const char *what)
{
	if (!p) {
		fprintf(stderr, "xvbench: %s: %s\n", what, strerror(errno));
		exit(1);
	}
	return p;
}

static void pattern_init(size_t extra)
{
	u64 x = 0x9E3779B97F4A7C15ull;
	size_t i;

	pattern = must(malloc(PATTERN_LEN + extra), "malloc");
	for (i = 0; i < PATTERN_LEN + extra; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		pattern[i] = i < PATTERN_LEN ? (unsigned char)(x >> 56) : pattern[i - PATTERN_LEN];
	}
}

/* Voluntary context switches so far (how often this process slept); with
 * cpu, the CPU time (user + system) it used, in seconds. */
static u64 sleeps(double *cpu)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru))
		return 0;
	if (cpu)
		*cpu = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
		       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
	return ru.ru_nvcsw;
}

static u64 now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (u64)t.tv_sec * 1000000000ull + t.tv_nsec;
}

static void pause_us(u64 us)
{
	struct timespec t = { us / 1000000, (us % 1000000) * 1000 };

	if (us)
		nanosleep(&t, NULL);
}

static void io(int write, unsigned char *buf, size_t n)
{
	while (n) {
		int got = write ? libxenvchan_write(c, buf, n) : libxenvchan_read(c, buf, n);

		if (got <= 0)
			must(NULL, write ? "libxenvchan_write" : "libxenvchan_read");
		buf += got;
		n -= got;
	}
}

static int cmp_u64(const void *a, const void *b)
{
	u64 x = *(const u64 *)a, y = *(const u64 *)b;

	return x < y ? -1 : x > y;
}

static void stream_read(u64 total, size_t chunk)
{
	unsigned char *buf = must(malloc(chunk), "malloc");
	u64 pos = 0, start = 0, samples = 0, s0 = 0, t0 = 0, s;

	while (pos < total) {
		int n = libxenvchan_read(c, buf, total - pos < chunk ? total - pos : chunk);

		if (n <= 0)
			must(NULL, "libxenvchan_read");
		for (s = (pos + SAMPLE - 1) / SAMPLE * SAMPLE;; s += SAMPLE, samples++) {
			if (s >= pos + n)
				s = pos + n - 1; /* and the last byte */
			if (buf[s - pos] != pattern[s % PATTERN_LEN]) {
				fprintf(stderr, "xvbench: data mismatch at stream offset %llu\n", s);
				exit(1);
			}
			if (s == pos + n - 1)
				break;
		}
		samples++;
		if (!pos) {
			s0 = sleeps(NULL);
			t0 = now_ns();
			start = n;
		}
		pos += n;
	}
	printf("bytes=%llu\nsecs=%.9f\nsamples=%llu\nsleeps=%llu\n", pos - start,
	       (now_ns() - t0) * 1e-9, samples, sleeps(NULL) - s0);
}

static void ping(int server, u64 rounds, size_t msg, u64 delay)
{
	unsigned char *in = must(malloc(msg), "malloc");
	u64 *rtt = must(malloc(rounds * sizeof(*rtt)), "malloc"), i, s0 = sleeps(NULL), t;

	for (i = 0; i < rounds; i++) {
		if (server) {
			io(0, in, msg);
			pause_us(delay);
			io(1, in, msg);
			continue;
		}
		pause_us(delay);
		t = now_ns();
		io(1, pattern + i % PATTERN_LEN, msg);
		io(0, in, msg);
		rtt[i] = now_ns() - t;
		if (memcmp(in, pattern + i % PATTERN_LEN, msg)) {
			fprintf(stderr, "xvbench: echo differs in round %llu\n", i);
			exit(1);
		}
	}
	if (!server && rounds) {
		qsort(rtt, rounds, sizeof(*rtt), cmp_u64);
		printf("median_ns=%llu\nsleeps=%llu\n", rtt[rounds / 2], sleeps(NULL) - s0);
	}
}

int main(int argc, char **argv)
{
	const char *mode = argc == 6 ? argv[3] : "", *d = getenv("BENCH_DELAY_US");
	u64 count = argc == 6 ? strtoull(argv[4], NULL, 0) : 0, t0, pos;
	size_t size = argc == 6 ? strtoul(argv[5], NULL, 0) : 0;
	int server = argc == 6 && !strcmp(argv[1], "server");
	unsigned char b = 1;
	double c0, c1;

	if (argc != 6 || (!server && strcmp(argv[1], "client")) || !size || size > (1 << 24)) {
		fprintf(stderr, "usage: xvbench server|client RING stream|ping|idle COUNT SIZE\n");
		return 2;
	}
	pattern_init(size);
	if (server) {
		unsigned long ring = strtoul(argv[2], NULL, 0);

		c = must(libxenvchan_server_init(NULL, 1, PATH, ring, ring), "libxenvchan_server_init");
		printf("listening\n");
		fflush(stdout);
		c->blocking = 1;
		while (libxenvchan_is_open(c) == 2)
			if (libxenvchan_wait(c))
				must(NULL, "libxenvchan_wait");
	} else {
		c = must(libxenvchan_client_init(NULL, 0, PATH), "libxenvchan_client_init");
		c->blocking = 1;
	}
	if (!strcmp(mode, "stream") && server)
		stream_read(count, size);
	else if (!strcmp(mode, "stream"))
		for (pos = 0; pos < count; pos += size)
			io(1, pattern + pos % PATTERN_LEN, count - pos < size ? count - pos : size);
	else if (!strcmp(mode, "ping"))
		ping(server, count, size, d ? strtoull(d, NULL, 0) : 0);
	else if (!strcmp(mode, "idle") && server) {
		t0 = now_ns();
		sleeps(&c0);
		io(0, &b, 1);
		sleeps(&c1);
		printf("cpu_secs=%.6f\nwall_secs=%.6f\n", c1 - c0, (now_ns() - t0) * 1e-9);
	} else if (!strcmp(mode, "idle")) {
		pause_us(count * 1000);
		io(1, &b, 1);
	} else {
		fprintf(stderr, "xvbench: unknown mode %s\n", mode);
		return 2;
	}
	fflush(stdout);
	libxenvchan_close(c);
	return 0;
}
