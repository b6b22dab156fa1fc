/*
 * view MODE [ARGS]: what a sandboxed program sees of time, randomness and
 * other processes (tests/view.rs). Built dynamically, as most programs
 * are: the C library then answers time calls through the vDSO.
 *
 *   clock              vdso/syscall/gettimeofday/time/coarse/tai seconds
 *   abs                elapsed ms of 300 ms absolute realtime deadlines
 *   touch PATH         utimensat(NULL), then utimes(NULL) on PATH2=PATH.2
 *   stack              the address of a stack variable
 *   getrandom          16 bytes of the getrandom syscall, hex
 *   vdso-getrandom     whether the vDSO exports getrandom
 *   seedlib            who defines getrandom(); bytes of getrandom() and
 *                      getentropy() in this process and in a forked child;
 *                      whether LD_PRELOAD's file can be written or replaced
 *   sibling SLEEP      /proc/PID/{environ,mem,maps,fd/0} of a child SLEEP
 *   host PID           reaching process PID by /proc, kill, pidfd_open
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void res(const char *op, long r)
{
	if (r < 0)
		printf("%s errno=%d\n", op, errno);
	else
		printf("%s ok\n", op);
}

static double mono(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static struct timespec in_ms(long ms)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	t.tv_nsec += (ms % 1000) * 1000000L;
	t.tv_sec += ms / 1000 + t.tv_nsec / 1000000000L;
	t.tv_nsec %= 1000000000L;
	return t;
}

static int m_clock(void)
{
	struct timespec ts, sys, co, tai;
	struct timeval tv;
	clock_gettime(CLOCK_REALTIME, &ts);
	syscall(SYS_clock_gettime, CLOCK_REALTIME, &sys);
	gettimeofday(&tv, NULL);
	time_t t = time(NULL);
	long tsys = syscall(SYS_time, NULL);
	clock_gettime(CLOCK_REALTIME_COARSE, &co);
	clock_gettime(CLOCK_TAI, &tai);
	printf("vdso %ld\nsyscall %ld\ngettimeofday %ld\ntime %ld\ntime-syscall %ld\ncoarse %ld\ntai %ld\n",
	       (long)ts.tv_sec, (long)sys.tv_sec, (long)tv.tv_sec, (long)t, tsys, (long)co.tv_sec,
	       (long)tai.tv_sec);
	return 0;
}

static pthread_mutex_t pi;
static void *hold_pi(void *a)
{
	(void)a;
	pthread_mutex_lock(&pi);
	sleep(3);
	return NULL;
}

static void elapsed(const char *what, double t0) { printf("%s %ld\n", what, (long)((mono() - t0) * 1000)); }

static int m_abs(void)
{
	double t0 = mono();
	struct timespec d = in_ms(300);
	clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &d, NULL);
	elapsed("nanosleep", t0);

	pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t c = PTHREAD_COND_INITIALIZER;
	pthread_mutex_lock(&m);
	t0 = mono();
	d = in_ms(300);
	pthread_cond_timedwait(&c, &m, &d);
	elapsed("condwait", t0);

	sem_t s;
	sem_init(&s, 0, 0);
	t0 = mono();
	d = in_ms(300);
	sem_timedwait(&s, &d);
	elapsed("semwait", t0);

	int fd = timerfd_create(CLOCK_REALTIME, 0);
	struct itimerspec its = {0};
	its.it_value = in_ms(300);
	t0 = mono();
	timerfd_settime(fd, TFD_TIMER_ABSTIME, &its, NULL);
	uint64_t n;
	if (read(fd, &n, 8) != 8)
		return 1;
	elapsed("timerfd", t0);

	sigset_t ss;
	sigemptyset(&ss);
	sigaddset(&ss, SIGUSR1);
	sigprocmask(SIG_BLOCK, &ss, NULL);
	struct sigevent se = {0};
	se.sigev_notify = SIGEV_SIGNAL;
	se.sigev_signo = SIGUSR1;
	timer_t tm;
	timer_create(CLOCK_REALTIME, &se, &tm);
	its.it_value = in_ms(300);
	t0 = mono();
	timer_settime(tm, TIMER_ABSTIME, &its, NULL);
	int sig;
	sigwait(&ss, &sig);
	elapsed("timer", t0);

	pthread_mutexattr_t a;
	pthread_mutexattr_init(&a);
	pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_INHERIT);
	pthread_mutex_init(&pi, &a);
	pthread_t th;
	pthread_create(&th, NULL, hold_pi, NULL);
	usleep(100000);
	t0 = mono();
	d = in_ms(300);
	pthread_mutex_timedlock(&pi, &d);
	elapsed("pi-timedlock", t0);
	return 0;
}

static int m_touch(const char *path)
{
	char two[4096];
	snprintf(two, sizeof two, "%s.2", path);
	for (int i = 0; i < 2; i++) {
		int fd = open(i ? two : path, O_CREAT | O_WRONLY, 0644);
		if (fd < 0)
			return 1;
		close(fd);
	}
	res("utimensat", utimensat(AT_FDCWD, path, NULL, 0));
	res("utimes", syscall(SYS_utimes, two, NULL));
	return 0;
}

static int m_getrandom(void)
{
	unsigned char b[16];
	if (syscall(SYS_getrandom, b, sizeof b, 0) != sizeof b)
		return 1;
	for (int i = 0; i < 16; i++)
		printf("%02x", b[i]);
	printf("\n");
	return 0;
}

static void hex(const char *key, const unsigned char *b, size_t n)
{
	printf("%s ", key);
	for (size_t i = 0; i < n; i++)
		printf("%02x", b[i]);
	printf("\n");
}

static int m_seedlib(void)
{
	Dl_info info;
	void *sym = dlsym(RTLD_DEFAULT, "getrandom");
	printf("getrandom-from %s\n", sym && dladdr(sym, &info) ? info.dli_fname : "none");
	unsigned char b[48];
	if (getrandom(b, sizeof b, 0) != sizeof b || getentropy(b + 16, 16) != 0)
		return 1;
	hex("parent", b, sizeof b);
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		if (getrandom(b, 16, 0) != 16)
			_exit(1);
		hex("child", b, 16);
		fflush(stdout);
		_exit(0);
	}
	int st;
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
		return 1;
	if (getrandom(b, 16, 0) != 16)
		return 1;
	hex("parent-after", b, 16);
	const char *lib = getenv("LD_PRELOAD");
	if (lib) {
		int fd = open(lib, O_WRONLY | O_CLOEXEC);
		printf("write %s\n", fd >= 0 ? "opened" : strerror(errno));
		char other[4096];
		snprintf(other, sizeof other, "%s/other.so", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
		int o = open(other, O_WRONLY | O_CREAT | O_CLOEXEC, 0755);
		if (o >= 0)
			close(o);
		int r = rename(other, lib);
		printf("replace %s\n", r == 0 ? "done" : strerror(errno));
		r = unlink(lib);
		printf("unlink %s\n", r == 0 ? "done" : strerror(errno));
	}
	return 0;
}

/* Whether the vDSO's symbol table defines `name`. */
static int vdso_has(const char *name)
{
	const unsigned char *base = (const unsigned char *)getauxval(AT_SYSINFO_EHDR);
	if (!base)
		return 0;
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)base;
	const Elf64_Shdr *sh = (const Elf64_Shdr *)(base + eh->e_shoff);
	for (int i = 0; i < eh->e_shnum; i++) {
		if (sh[i].sh_type != SHT_DYNSYM)
			continue;
		const Elf64_Sym *sym = (const Elf64_Sym *)(base + sh[i].sh_offset);
		const char *str = (const char *)(base + sh[sh[i].sh_link].sh_offset);
		for (size_t k = 0; k < sh[i].sh_size / sizeof *sym; k++)
			if (sym[k].st_shndx != SHN_UNDEF && !strcmp(str + sym[k].st_name, name))
				return 1;
	}
	return 0;
}

static int m_sibling(const char *sleeper)
{
	pid_t c = fork();
	if (c == 0) {
		execl(sleeper, sleeper, "3", (char *)NULL);
		_exit(127);
	}
	usleep(500000);
	const char *files[] = {"environ", "mem", "maps", "fd/0"};
	for (int i = 0; i < 4; i++) {
		char p[64];
		snprintf(p, sizeof p, "/proc/%d/%s", c, files[i]);
		int fd = open(p, O_RDONLY);
		res(files[i], fd);
		if (fd >= 0)
			close(fd);
	}
	kill(c, SIGKILL);
	waitpid(c, NULL, 0);
	return 0;
}

static int m_host(long pid)
{
	char p[96];
	snprintf(p, sizeof p, "/proc/%ld/status", pid);
	res("proc", open(p, O_RDONLY));
	snprintf(p, sizeof p, "/proc/self/root/proc/%ld/status", pid);
	res("root-proc", open(p, O_RDONLY));
	res("kill", kill((pid_t)pid, 0));
	res("pidfd", syscall(SYS_pidfd_open, pid, 0));
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	if (argc < 2)
		return 2;
	const char *m = argv[1];
	if (!strcmp(m, "clock"))
		return m_clock();
	if (!strcmp(m, "abs"))
		return m_abs();
	if (!strcmp(m, "touch") && argc == 3)
		return m_touch(argv[2]);
	if (!strcmp(m, "stack")) {
		int x;
		printf("stack %p\n", (void *)&x);
		return 0;
	}
	if (!strcmp(m, "getrandom"))
		return m_getrandom();
	if (!strcmp(m, "seedlib"))
		return m_seedlib();
	if (!strcmp(m, "vdso-getrandom")) {
		printf("getrandom %s\n", vdso_has("__vdso_getrandom") ? "present" : "hidden");
		printf("clock_gettime %s\n", vdso_has("__vdso_clock_gettime") ? "present" : "hidden");
		return 0;
	}
	if (!strcmp(m, "sibling") && argc == 3)
		return m_sibling(argv[2]);
	if (!strcmp(m, "host") && argc == 3)
		return m_host(strtol(argv[2], NULL, 10));
	return 2;
}
