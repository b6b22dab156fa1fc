/* Shared helpers for the benchmark workloads run by `cargo xtask bench`.
 *
 * Every workload prints one line on success:
 *     ok <iterations> <loop_ns>
 * where <loop_ns> is the CLOCK_MONOTONIC time spent in the measured loop
 * alone (process start-up and the sandbox's own set-up excluded). Any
 * failure prints "error: ..." on stderr and exits non-zero, so the harness
 * never times a workload that did not do its work. */
#ifndef WORKLOAD_COMMON_H
#define WORKLOAD_COMMON_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long parse_count(const char *s, const char *what)
{
	char *end = NULL;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v <= 0) {
		fprintf(stderr, "error: %s must be a positive integer, got '%s'\n", what, s);
		exit(2);
	}
	return v;
}

static void report(long iterations, long long t0, long long t1)
{
	printf("ok %ld %lld\n", iterations, t1 - t0);
	fflush(stdout);
}

#endif
