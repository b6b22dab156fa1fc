/*
 * Attack class 3: the supervisor (the sandlock process) as a target.
 *
 * The target pid comes from the runner's "go PID ..." line: under sandlock
 * it is the sandlock process, bare it is a sentinel the runner started.
 * `kill-parent` uses getppid() instead, and `kill-all` signals -1.
 */
#include "common.h"

#include <sched.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/uio.h>

#ifndef PTRACE_SEIZE
#define PTRACE_SEIZE 0x4206
#endif
#define IOPRIO_WHO_PROCESS 1
#define IOPRIO_CLASS_IDLE 3
#define SCHED_IDLE_POLICY 5

static long target(void) { return num(word(wait_go(), 0)); }

static int a_ptrace(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	ready();
	long pid = target();
	report("ptrace-seize", ptrace(PTRACE_SEIZE, (pid_t)pid, 0, 0));
	hold();
	return 0;
}

/* Print bytes as DATA, with NULs and non-printables as '.'. */
static void data(const char *buf, ssize_t n)
{
	static char out[65536 + 1];
	if (n > 65536)
		n = 65536;
	for (ssize_t i = 0; i < n; i++)
		out[i] = (buf[i] >= 0x21 && buf[i] <= 0x7e) ? buf[i] : '.';
	out[n > 0 ? n : 0] = 0;
	say("DATA %s", out);
}

/* go PID ADDR LEN: read the target's memory with process_vm_readv. */
static int a_vm_read(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	ready();
	const char *go = wait_go();
	long pid = num(word(go, 0)), addr = num(word(go, 1)), len = num(word(go, 2));
	static char buf[4096];
	if (len > (long)sizeof buf)
		len = sizeof buf;
	struct iovec local = {.iov_base = buf, .iov_len = (size_t)len};
	struct iovec remote = {.iov_base = (void *)addr, .iov_len = (size_t)len};
	ssize_t r = process_vm_readv((pid_t)pid, &local, 1, &remote, 1, 0);
	report("process_vm_readv", r);
	if (r > 0)
		data(buf, r);
	hold();
	return 0;
}

/* go PID ADDR LEN: overwrite the target's memory with process_vm_writev. */
static int a_vm_write(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	ready();
	const char *go = wait_go();
	long pid = num(word(go, 0)), addr = num(word(go, 1)), len = num(word(go, 2));
	static char buf[4096];
	if (len > (long)sizeof buf)
		len = sizeof buf;
	memset(buf, 'P', (size_t)len);
	struct iovec local = {.iov_base = buf, .iov_len = (size_t)len};
	struct iovec remote = {.iov_base = (void *)addr, .iov_len = (size_t)len};
	report("process_vm_writev", process_vm_writev((pid_t)pid, &local, 1, &remote, 1, 0));
	hold();
	return 0;
}

static int a_kill(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	ready();
	long pid = target();
	report("kill", kill((pid_t)pid, SIGKILL));
	hold();
	return 0;
}

/*
 * signal METHOD: the other ways to signal a process, aimed like kill:
 *   tgkill    tgkill(PID, PID, SIGKILL);
 *   sigqueue  rt_sigqueueinfo(PID, SIGKILL, ...);
 *   pidfd     pidfd_open(PID) and pidfd_send_signal(SIGKILL);
 *   sigio     F_SETOWN PID on a pipe with O_ASYNC, then a write: the
 *             kernel sends SIGIO (whose default action ends a process).
 */
static int a_signal(int argc, char **argv)
{
	need_args(argc, 1, "signal tgkill|sigqueue|pidfd|sigio");
	const char *how = argv[0];
	ready();
	long pid = target();
	long r;
	if (strcmp(how, "tgkill") == 0) {
		r = syscall(SYS_tgkill, pid, pid, SIGKILL);
	} else if (strcmp(how, "sigqueue") == 0) {
		siginfo_t si;
		memset(&si, 0, sizeof si);
		si.si_signo = SIGKILL;
		si.si_code = SI_QUEUE;
		si.si_pid = getpid();
		si.si_uid = getuid();
		r = syscall(SYS_rt_sigqueueinfo, pid, SIGKILL, &si);
	} else if (strcmp(how, "pidfd") == 0) {
		long fd = syscall(SYS_pidfd_open, pid, 0);
		report("pidfd_open", fd);
		r = fd < 0 ? -1 : syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0);
	} else if (strcmp(how, "sigio") == 0) {
		int p[2];
		if (pipe(p) < 0) {
			report("pipe", -1);
			return 1;
		}
		r = fcntl(p[0], F_SETOWN, (int)pid);
		report("setown", r);
		if (r == 0) {
			r = fcntl(p[0], F_SETFL, O_ASYNC | O_NONBLOCK);
			report("async", r);
			r = write(p[1], "x", 1) == 1 ? 0 : -1;
		}
	} else {
		say("ERROR unknown method %s", how);
		return 2;
	}
	report(how, r);
	hold();
	return 0;
}

static int a_kill_parent(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	ready();
	wait_go();
	pid_t ppid = getppid();
	say("PARENT %d", ppid);
	/* ppid 0 means the parent is outside our pid namespace: nothing to aim at. */
	report("kill-parent", ppid > 0 ? kill(ppid, SIGKILL) : (errno = ESRCH, -1));
	hold();
	return 0;
}

/* kill(-1, SIGKILL). Only ever run inside `helpers pidns`. */
static int a_kill_all(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	ready();
	report("kill-all", kill(-1, SIGKILL));
	return 0;
}

static int a_prlimit(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	ready();
	long pid = target();
	struct rlimit lim = {.rlim_cur = 12345, .rlim_max = 12345};
	report("prlimit64", prlimit((pid_t)pid, RLIMIT_MSGQUEUE, &lim, NULL));
	hold();
	return 0;
}

/* get_robust_list of the target: the address of its robust futex list
 * head (an address in its memory, which ASLR is meant to keep secret). */
static int a_robust_list(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	ready();
	long pid = target();
	void *head = 0;
	size_t len = 0;
	long r = syscall(SYS_get_robust_list, (pid_t)pid, &head, &len);
	report("get_robust_list", r);
	if (r == 0)
		say("HEAD %p %zu", head, len);
	hold();
	return 0;
}

/* kcmp of our descriptor 0 and the target's: whether they are the same
 * open file (what the target holds, told from outside). */
static int a_kcmp(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	ready();
	long pid = target();
	long r = syscall(SYS_kcmp, getpid(), (pid_t)pid, 0 /* KCMP_FILE */, 0, 0);
	report("kcmp", r);
	hold();
	return 0;
}

static int a_setpriority(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	ready();
	long pid = target();
	report("setpriority", setpriority(PRIO_PROCESS, (id_t)pid, 19));
	hold();
	return 0;
}

/* Move the target to a CPU set different from the one it has. */
static int a_affinity(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	ready();
	long pid = target();
	cpu_set_t cur, want;
	CPU_ZERO(&cur);
	CPU_ZERO(&want);
	report("sched_getaffinity", sched_getaffinity((pid_t)pid, sizeof cur, &cur));
	if (CPU_COUNT(&cur) == 1 && CPU_ISSET(0, &cur))
		CPU_SET(1, &want);
	else
		CPU_SET(0, &want);
	report("sched_setaffinity", sched_setaffinity((pid_t)pid, sizeof want, &want));
	hold();
	return 0;
}

struct sched_attr_v0 {
	uint32_t size, sched_policy;
	uint64_t sched_flags;
	int32_t sched_nice;
	uint32_t sched_priority;
	uint64_t sched_runtime, sched_deadline, sched_period;
};

static int a_setattr(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	ready();
	long pid = target();
	struct sched_attr_v0 attr;
	memset(&attr, 0, sizeof attr);
	attr.size = sizeof attr;
	attr.sched_policy = SCHED_IDLE_POLICY;
	report("sched_setattr", syscall(SYS_sched_setattr, pid, &attr, 0));
	hold();
	return 0;
}

static int a_ioprio(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	ready();
	long pid = target();
	report("ioprio_set", syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, pid, IOPRIO_CLASS_IDLE << 13));
	hold();
	return 0;
}

/* proc-read FILE, go PID: read /proc/PID/FILE (environ, cmdline, ...). */
static int a_proc_read(int argc, char **argv)
{
	need_args(argc, 1, "proc-read FILE");
	ready();
	long pid = target();
	char path[128];
	snprintf(path, sizeof path, "/proc/%ld/%s", pid, argv[0]);
	int fd = open(path, O_RDONLY);
	report("proc-open", fd);
	if (fd >= 0) {
		static char buf[65536];
		ssize_t n = read(fd, buf, sizeof buf);
		report("proc-read", n);
		if (n > 0)
			data(buf, n);
	}
	hold();
	return 0;
}

/* proc-mem, go PID ADDR LEN: read the target's memory through /proc/PID/mem. */
static int a_proc_mem(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	ready();
	const char *go = wait_go();
	long pid = num(word(go, 0)), addr = num(word(go, 1)), len = num(word(go, 2));
	char path[64];
	snprintf(path, sizeof path, "/proc/%ld/mem", pid);
	int fd = open(path, O_RDONLY);
	report("mem-open", fd);
	if (fd >= 0) {
		static char buf[4096];
		if (len > (long)sizeof buf)
			len = sizeof buf;
		ssize_t n = pread(fd, buf, (size_t)len, (off_t)addr);
		report("mem-read", n);
		if (n > 0)
			data(buf, n);
	}
	hold();
	return 0;
}

/* proc-fd, go PID: open every /proc/PID/fd/N, keeping what opens. */
static int a_proc_fd(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	ready();
	long pid = target();
	int opened = 0;
	for (int n = 0; n < 256; n++) {
		char path[64];
		snprintf(path, sizeof path, "/proc/%ld/fd/%d", pid, n);
		int fd = open(path, O_RDWR);
		if (fd < 0)
			fd = open(path, O_RDONLY);
		if (fd >= 0) {
			say("OPENED %d as %d", n, fd);
			opened++;
		}
	}
	report("proc-fd", opened);
	/* Not hold(): a reopened pipe may be our own stdin's write end, and
	 * EOF would never come. The runner sends one more line instead. */
	say("HOLD");
	wait_go();
	return 0;
}

int main(int argc, char **argv)
{
	static const struct mode modes[] = {
		{"ptrace", a_ptrace},
		{"vm-read", a_vm_read},
		{"vm-write", a_vm_write},
		{"kill", a_kill},
		{"signal", a_signal},
		{"kill-parent", a_kill_parent},
		{"kill-all", a_kill_all},
		{"prlimit", a_prlimit},
		{"robust-list", a_robust_list},
		{"kcmp", a_kcmp},
		{"setpriority", a_setpriority},
		{"affinity", a_affinity},
		{"setattr", a_setattr},
		{"ioprio", a_ioprio},
		{"proc-read", a_proc_read},
		{"proc-mem", a_proc_mem},
		{"proc-fd", a_proc_fd},
		{0, 0},
	};
	return dispatch(modes, argc, argv);
}
