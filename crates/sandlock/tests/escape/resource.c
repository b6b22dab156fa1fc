/*
 * Attack class 7: resource exhaustion and escaping the limits.
 *
 * Every bomb here is bounded by its own LIMIT argument, so running it bare
 * (to prove it works) cannot hurt the machine; under sandlock the sandbox's
 * limit must bite first. Tasks created by a bomb block on stdin, so they
 * are alive at the same time and the runner can count them.
 */
#include "common.h"

#include <pthread.h>
#include <sched.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/shm.h>
#include <time.h>

static void *thread_hold(void *p)
{
	(void)p;
	hold();
	return NULL;
}

static int clone_hold(void *p)
{
	(void)p;
	hold();
	return 0;
}

/* bomb fork|sysfork|thread|clonevm LIMIT */
static int a_bomb(int argc, char **argv)
{
	need_args(argc, 2, "bomb fork|sysfork|thread|clonevm LIMIT");
	const char *kind = argv[0];
	long limit = num(argv[1]);
	ready();
	wait_go();
	long made = 0;
	int err = 0;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	for (; made < limit; made++) {
		long r;
		if (strcmp(kind, "fork") == 0) {
			r = fork();
		} else if (strcmp(kind, "sysfork") == 0) {
			r = syscall(SYS_fork);
		} else if (strcmp(kind, "thread") == 0) {
			pthread_t t;
			int e = pthread_create(&t, &attr, thread_hold, NULL);
			r = e ? (errno = e, -1) : 1;
		} else if (strcmp(kind, "clonevm") == 0) {
			size_t sz = 64 * 1024;
			char *stack = mmap(NULL, sz, PROT_READ | PROT_WRITE,
					   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			r = stack == MAP_FAILED ? -1 : clone(clone_hold, stack + sz, CLONE_VM | SIGCHLD, NULL);
		} else {
			say("ERROR unknown kind %s", kind);
			return 2;
		}
		if (r == 0) {
			hold();
			_exit(0);
		}
		if (r < 0) {
			err = errno;
			break;
		}
	}
	say("RESULT bomb made=%ld errno=%d", made, err);
	hold();
	_exit(0); /* threads, if any, are still in read(2) */
}

static void touch(char *p, size_t bytes, const char *what)
{
	for (size_t off = 0; off < bytes; off += 4096) {
		p[off] = 1;
		if ((off + 4096) % (16 << 20) == 0)
			say("TOUCHED %s %zu", what, (off + 4096) >> 20);
	}
}

/* anon MB: plain anonymous memory, touched. */
static int a_anon(int argc, char **argv)
{
	need_args(argc, 1, "anon MB");
	size_t bytes = (size_t)num(argv[0]) << 20;
	ready();
	wait_go();
	char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	report("mmap", p == MAP_FAILED ? -1 : 0);
	if (p != MAP_FAILED) {
		touch(p, bytes, "anon");
		report("anon", (long)(bytes >> 20));
	}
	hold();
	return 0;
}

/* memfd MB: memory owned by a file, reached through ftruncate + mmap. */
static int a_memfd(int argc, char **argv)
{
	need_args(argc, 1, "memfd MB");
	size_t bytes = (size_t)num(argv[0]) << 20;
	ready();
	wait_go();
	int fd = memfd_create("escape-memory", 0);
	report("memfd_create", fd);
	report("ftruncate", ftruncate(fd, (off_t)bytes));
	char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	report("mmap", p == MAP_FAILED ? -1 : 0);
	if (p != MAP_FAILED) {
		touch(p, bytes, "memfd");
		report("memfd", (long)(bytes >> 20));
	}
	hold();
	return 0;
}

/* sysvshm KEY MB: a SysV segment, never removed (it outlives us). */
static int a_sysvshm(int argc, char **argv)
{
	need_args(argc, 2, "sysvshm KEY MB");
	key_t key = (key_t)num(argv[0]);
	size_t bytes = (size_t)num(argv[1]) << 20;
	ready();
	wait_go();
	int id = shmget(key, bytes, IPC_CREAT | 0600);
	report("shmget", id);
	char *p = id < 0 ? (void *)-1 : shmat(id, NULL, 0);
	report("shmat", p == (void *)-1 ? -1 : 0);
	if (p != (void *)-1) {
		touch(p, bytes, "shm");
		report("sysvshm", (long)(bytes >> 20));
	}
	hold();
	return 0;
}

/* daemon exit|stay SECONDS: leave a setsid()'d grandchild behind (for SECONDS + 15). */
static int a_daemon(int argc, char **argv)
{
	need_args(argc, 2, "daemon exit|stay SECONDS");
	long secs = num(argv[1]);
	ready();
	wait_go();
	pid_t c = fork();
	if (c == 0) {
		setsid();
		if (fork() == 0) {
			/* Outlive the command by 15 s. */
			for (long i = 0; i < (secs + 15) * 10; i++)
				usleep(100000);
			_exit(0);
		}
		_exit(0);
	}
	waitpid(c, NULL, 0);
	say("RESULT daemon ok=1");
	if (strcmp(argv[0], "stay") == 0)
		for (long i = 0; i < secs * 10; i++)
			usleep(100000);
	return 0;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* cpu-setsid SECONDS: a child leaves the process group, then spins. */
static int a_cpu_setsid(int argc, char **argv)
{
	need_args(argc, 1, "cpu-setsid SECONDS");
	double secs = (double)num(argv[0]);
	ready();
	wait_go();
	pid_t c = fork();
	if (c == 0) {
		report("setsid", setsid());
		double start = now();
		volatile unsigned long spin = 0;
		while (now() - start < secs)
			spin++;
		struct rusage ru;
		getrusage(RUSAGE_SELF, &ru);
		long cpu_ms = ru.ru_utime.tv_sec * 1000 + ru.ru_utime.tv_usec / 1000 +
			      ru.ru_stime.tv_sec * 1000 + ru.ru_stime.tv_usec / 1000;
		say("CPU ms=%ld wall_ms=%ld", cpu_ms, (long)((now() - start) * 1000));
		_exit(0);
	}
	waitpid(c, NULL, 0);
	return 0;
}

/* fds LIMIT: dup(2) and pipe(2) until refused or LIMIT. */
static int a_fds(int argc, char **argv)
{
	need_args(argc, 1, "fds LIMIT");
	long limit = num(argv[0]);
	ready();
	wait_go();
	long dups = 0, pipes = 0;
	int err = 0;
	for (; dups < limit; dups++)
		if (dup(1) < 0) {
			err = errno;
			break;
		}
	say("RESULT dup made=%ld errno=%d", dups, err);
	err = 0;
	for (; pipes < limit; pipes++) {
		int p[2];
		if (pipe(p) < 0) {
			err = errno;
			break;
		}
	}
	say("RESULT pipe made=%ld errno=%d", pipes, err);
	hold();
	return 0;
}

int main(int argc, char **argv)
{
	static const struct mode modes[] = {
		{"bomb", a_bomb},
		{"anon", a_anon},
		{"memfd", a_memfd},
		{"sysvshm", a_sysvshm},
		{"daemon", a_daemon},
		{"cpu-setsid", a_cpu_setsid},
		{"fds", a_fds},
		{0, 0},
	};
	return dispatch(modes, argc, argv);
}
