/*
 * Workloads for tests/resources.rs: each mode does one thing the limits
 * must hold, and prints what the kernel answered.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void spin(double secs)
{
	double t = now();
	volatile unsigned long x = 0;
	while (now() - t < secs)
		x++;
}

static void *park(void *p)
{
	(void)p;
	for (;;)
		pause();
	return NULL;
}

static double cpu_of(struct rusage *ru)
{
	return (double)ru->ru_utime.tv_sec + (double)ru->ru_utime.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	const char *m = argv[1];
	long n = argc > 2 ? atol(argv[2]) : 0;
	setvbuf(stdout, NULL, _IONBF, 0);
	if (!strcmp(m, "forks")) {
		/* n children at once, each alive for 1 s. */
		long made = 0, eagain = 0;
		for (long i = 0; i < n; i++) {
			pid_t c = fork();
			if (c == 0) {
				sleep(1);
				_exit(0);
			}
			if (c > 0)
				made++;
			else if (errno == EAGAIN)
				eagain++;
		}
		while (wait(NULL) > 0)
			;
		printf("made=%ld eagain=%ld\n", made, eagain);
		return 0;
	}
	if (!strcmp(m, "forkloop")) {
		for (long i = 0; i < n; i++) {
			pid_t c = fork();
			if (c == 0)
				_exit(0);
			if (c < 0) {
				printf("fork %ld failed errno=%d\n", i, errno);
				return 1;
			}
			waitpid(c, NULL, 0);
		}
		printf("ok %ld\n", n);
		return 0;
	}
	if (!strcmp(m, "threadbomb") || !strcmp(m, "forkbomb")) {
		/* Tasks until refused (or n), all parked; report and hold. */
		int threads = !strcmp(m, "threadbomb");
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setstacksize(&attr, 64 * 1024);
		long made = 0;
		int err = 0;
		for (; made < n; made++) {
			if (threads) {
				pthread_t t;
				int e = pthread_create(&t, &attr, park, NULL);
				if (e) {
					err = e;
					break;
				}
			} else {
				long r = syscall(SYS_fork);
				if (r == 0)
					park(NULL);
				if (r < 0) {
					err = errno;
					break;
				}
			}
		}
		printf("made=%ld errno=%d\n", made, err);
		if (argc > 3)
			sleep((unsigned)atoi(argv[3]));
		return 0;
	}
	if (!strcmp(m, "memfd")) {
		size_t sz = (size_t)n << 20;
		int fd = memfd_create("probe", 0);
		if (fd < 0 || ftruncate(fd, (off_t)sz)) {
			printf("setup errno=%d\n", errno);
			return 3;
		}
		char *p = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED) {
			printf("mmap errno=%d\n", errno);
			return 4;
		}
		for (size_t o = 0; o < sz; o += 4096)
			p[o] = 1;
		printf("touched %zu\n", sz >> 20);
		return 0;
	}
	if (!strcmp(m, "noreserve")) {
		/* Reserve 1 TiB, touch n MiB, hold for argv[3] seconds. */
		size_t sz = (size_t)1 << 40;
		char *p = mmap(NULL, sz, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p == MAP_FAILED) {
			printf("mmap errno=%d\n", errno);
			return 4;
		}
		size_t t = (size_t)n << 20;
		for (size_t o = 0; o < t; o += 4096)
			p[o] = 1;
		printf("touched %zu\n", t >> 20);
		if (argc > 3)
			sleep((unsigned)atoi(argv[3]));
		return 0;
	}
	if (!strcmp(m, "cpu")) {
		/* Spin n seconds (in a setsid() child with "setsid"); print user CPU. */
		struct rusage ru;
		if (argc > 3 && !strcmp(argv[3], "setsid")) {
			pid_t c = fork();
			if (c == 0) {
				setsid();
				spin((double)n);
				_exit(0);
			}
			waitpid(c, NULL, 0);
			getrusage(RUSAGE_CHILDREN, &ru);
		} else {
			spin((double)n);
			getrusage(RUSAGE_SELF, &ru);
		}
		printf("user=%.3f\n", cpu_of(&ru));
		return 0;
	}
	return 2;
}
