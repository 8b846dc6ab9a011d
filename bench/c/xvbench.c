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

static unsigned char *pattern; /* PATTERN_LEN + chunk bytes, wrapping */

static void die(const char *what)
{
	fprintf(stderr, "xvbench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void pattern_init(size_t extra)
{
	uint64_t x = 0x9E3779B97F4A7C15ull;
	size_t i, n = PATTERN_LEN + extra;

	pattern = malloc(n);
	if (!pattern)
		die("malloc");
	for (i = 0; i < PATTERN_LEN; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		pattern[i] = (unsigned char)(x >> 56);
	}
	for (; i < n; i++)
		pattern[i] = pattern[i - PATTERN_LEN];
}

/* How often this process slept so far (voluntary context switches);
 * with cpu, the CPU time (user + system) it used, in seconds. */
static uint64_t usage(double *cpu)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru))
		return 0;
	if (cpu)
		*cpu = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
		       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
	return ru.ru_nvcsw;
}

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + t.tv_nsec;
}

/* Check the samples of buf, which holds stream bytes [pos, pos + n). */
static uint64_t verify(const unsigned char *buf, uint64_t pos, size_t n)
{
	uint64_t s = (pos + SAMPLE - 1) / SAMPLE * SAMPLE, checked = 0;

	for (; s < pos + n; s += SAMPLE, checked++)
		if (buf[s - pos] != pattern[s % PATTERN_LEN])
			goto bad;
	if (buf[n - 1] != pattern[(pos + n - 1) % PATTERN_LEN])
		goto bad;
	return checked + 1;
bad:
	fprintf(stderr, "xvbench: data mismatch near stream offset %llu\n",
		(unsigned long long)pos);
	exit(1);
}

static void stream_read(struct libxenvchan *c, uint64_t total, size_t chunk)
{
	unsigned char *buf = malloc(chunk);
	uint64_t pos = 0, start_pos = 0, samples = 0, sleeps0 = 0, t0 = 0;
	double secs;

	if (!buf)
		die("malloc");
	while (pos < total) {
		size_t want = total - pos < chunk ? total - pos : chunk;
		int n = libxenvchan_read(c, buf, want);

		if (n <= 0)
			die("libxenvchan_read");
		samples += verify(buf, pos, n);
		if (!pos) {
			sleeps0 = usage(NULL);
			t0 = now_ns();
			start_pos = n;
		}
		pos += n;
	}
	secs = (now_ns() - t0) * 1e-9;
	printf("bytes=%llu\nsecs=%.9f\nsamples=%llu\nsleeps=%llu\n",
	       (unsigned long long)(pos - start_pos), secs,
	       (unsigned long long)samples,
	       (unsigned long long)(usage(NULL) - sleeps0));
	free(buf);
}

static void stream_write(struct libxenvchan *c, uint64_t total, size_t chunk)
{
	uint64_t pos = 0;

	while (pos < total) {
		size_t want = total - pos < chunk ? total - pos : chunk;
		int n = libxenvchan_write(c, pattern + pos % PATTERN_LEN, want);

		if (n <= 0)
			die("libxenvchan_write");
		pos += n;
	}
}

static void exact_read(struct libxenvchan *c, unsigned char *buf, size_t n)
{
	while (n) {
		int got = libxenvchan_read(c, buf, n);

		if (got <= 0)
			die("libxenvchan_read");
		buf += got;
		n -= got;
	}
}

static void exact_write(struct libxenvchan *c, const unsigned char *buf, size_t n)
{
	if (libxenvchan_write(c, buf, n) != (int)n)
		die("libxenvchan_write");
}

/* BENCH_DELAY_US: sleep that long (see the top of this file). */
static void delay(void)
{
	const char *d = getenv("BENCH_DELAY_US");
	long us = d ? atol(d) : 0;
	struct timespec t = { us / 1000000, (us % 1000000) * 1000 };

	if (us > 0)
		nanosleep(&t, NULL);
}

static void idle_read(struct libxenvchan *c)
{
	unsigned char b;
	double c0, c1;
	uint64_t t0 = now_ns();

	usage(&c0);
	exact_read(c, &b, 1);
	usage(&c1);
	printf("cpu_secs=%.6f\nwall_secs=%.6f\n", c1 - c0, (now_ns() - t0) * 1e-9);
}

static void idle_write(struct libxenvchan *c, uint64_t ms)
{
	unsigned char b = 1;
	struct timespec t = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	nanosleep(&t, NULL);
	exact_write(c, &b, 1);
}

static void pong(struct libxenvchan *c, uint64_t rounds, size_t msg)
{
	unsigned char *buf = malloc(msg);
	uint64_t i;

	if (!buf)
		die("malloc");
	for (i = 0; i < rounds; i++) {
		exact_read(c, buf, msg);
		delay();
		exact_write(c, buf, msg);
	}
	free(buf);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void ping(struct libxenvchan *c, uint64_t rounds, size_t msg)
{
	unsigned char *out = malloc(msg), *in = malloc(msg);
	uint64_t *rtt = malloc(rounds * sizeof(*rtt)), i, sleeps0;

	if (!out || !in || !rtt || !rounds)
		die("malloc");
	sleeps0 = usage(NULL);
	for (i = 0; i < rounds; i++) {
		uint64_t t;

		memcpy(out, pattern + i % PATTERN_LEN, msg);
		delay();
		t = now_ns();
		exact_write(c, out, msg);
		exact_read(c, in, msg);
		rtt[i] = now_ns() - t;
		if (memcmp(in, out, msg)) {
			fprintf(stderr, "xvbench: echo differs in round %llu\n",
				(unsigned long long)i);
			exit(1);
		}
	}
	sleeps0 = usage(NULL) - sleeps0;
	qsort(rtt, rounds, sizeof(*rtt), cmp_u64);
	printf("median_ns=%llu\nrounds=%llu\nsleeps=%llu\n",
	       (unsigned long long)rtt[rounds / 2], (unsigned long long)rounds,
	       (unsigned long long)sleeps0);
	free(out);
	free(in);
	free(rtt);
}

int main(int argc, char **argv)
{
	struct libxenvchan *c;
	const char *mode = argc == 6 ? argv[3] : "";
	uint64_t count = argc == 6 ? strtoull(argv[4], NULL, 0) : 0;
	size_t size = argc == 6 ? strtoul(argv[5], NULL, 0) : 0;
	unsigned long ring = argc == 6 ? strtoul(argv[2], NULL, 0) : 0;
	int server = argc == 6 && !strcmp(argv[1], "server");

	if (argc != 6 || (!server && strcmp(argv[1], "client")) || !size || size > (1 << 24)) {
		fprintf(stderr, "usage: xvbench server|client RING stream|ping|idle COUNT SIZE\n");
		return 2;
	}
	pattern_init(size);
	if (server) {
		c = libxenvchan_server_init(NULL, 1, PATH, ring, ring);
		if (!c)
			die("libxenvchan_server_init");
		printf("listening\n");
		fflush(stdout);
		c->blocking = 1;
		while (libxenvchan_is_open(c) == 2)
			if (libxenvchan_wait(c))
				die("libxenvchan_wait");
	} else {
		c = libxenvchan_client_init(NULL, 0, PATH);
		if (!c)
			die("libxenvchan_client_init");
		c->blocking = 1;
	}
	if (!strcmp(mode, "stream"))
		(server ? stream_read : stream_write)(c, count, size);
	else if (!strcmp(mode, "ping"))
		(server ? pong : ping)(c, count, size);
	else if (!strcmp(mode, "idle"))
		server ? idle_read(c) : idle_write(c, count);
	else {
		fprintf(stderr, "xvbench: unknown mode %s\n", mode);
		return 2;
	}
	fflush(stdout);
	libxenvchan_close(c);
	return 0;
}
