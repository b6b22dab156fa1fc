/*
 * Attack class 1: the shape of the seccomp filter.
 *
 * The same kernel entry points reached through another syscall table (x32
 * numbers, the i386 `int $0x80` gate), integer arguments carrying garbage in
 * their upper 32 bits (which the kernel ignores but a careless 64-bit
 * comparison does not), clone3 whose flags live in memory BPF cannot read,
 * and syscall numbers past the newest one the filter knows.
 */
#include "common.h"

#include <linux/sched.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <termios.h>

#define X32_BIT 0x40000000L
#define X32_UNSHARE 272

/* i386 syscall numbers. */
#define I386_EXECVE 11
#define I386_PTRACE 26
#define I386_SOCKETCALL 102
#define I386_UNSHARE 310
#define I386_SOCKET 359
#define I386_CONNECT 362
#define SOCKETCALL_SOCKET 1
#define SOCKETCALL_CONNECT 3

#ifndef PTRACE_SEIZE
#define PTRACE_SEIZE 0x4206
#endif

/* Enter the kernel through the i386 gate; returns the raw result. */
static long int80(long nr, long a, long b, long c, long d, long e)
{
	long ret;
	__asm__ volatile("int $0x80"
			 : "=a"(ret)
			 : "a"(nr), "b"(a), "c"(b), "d"(c), "S"(d), "D"(e)
			 : "memory", "r8", "r9", "r10", "r11");
	return ret;
}

/* Memory below 4 GiB, so that i386 calls can take pointers into it. */
static void *low_page(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
	if (p == MAP_FAILED) {
		report("mmap-32bit", -1);
		_exit(1);
	}
	return p;
}

static long u32(const void *p) { return (long)(uintptr_t)p; }

/* x32-probe: does this kernel have the x32 ABI at all? (getpid) */
static int a_x32_probe(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	ready();
	report("x32-getpid", syscall(39 | X32_BIT));
	return 0;
}

static int a_x32_unshare(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	ready();
	wait_go();
	report("x32-unshare", syscall(X32_UNSHARE | X32_BIT, CLONE_NEWUSER));
	hold();
	return 0;
}

static int a_i386_unshare(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	ready();
	wait_go();
	report_raw("i386-unshare", int80(I386_UNSHARE, CLONE_NEWUSER, 0, 0, 0, 0));
	hold();
	return 0;
}

/* go PID: attach to PID through the i386 ptrace. */
static int a_i386_ptrace(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	ready();
	long pid = num(word(wait_go(), 0));
	report_raw("i386-ptrace", int80(I386_PTRACE, PTRACE_SEIZE, pid, 0, 0, 0));
	hold();
	return 0;
}

static void fill_sin(struct sockaddr_in *sa, const char *ip, const char *port)
{
	memset(sa, 0, sizeof *sa);
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)num(port));
	if (inet_pton(AF_INET, ip, &sa->sin_addr) != 1) {
		say("ERROR bad address %s", ip);
		_exit(2);
	}
}

/* i386-socketcall IP PORT: connect through socketcall(2). */
static int a_i386_socketcall(int argc, char **argv)
{
	need_args(argc, 2, "i386-socketcall IP PORT");
	uint32_t *args = low_page();
	struct sockaddr_in *sa = (struct sockaddr_in *)(args + 16);
	fill_sin(sa, argv[0], argv[1]);
	ready();
	wait_go();
	args[0] = AF_INET;
	args[1] = SOCK_STREAM;
	args[2] = 0;
	long fd = int80(I386_SOCKETCALL, SOCKETCALL_SOCKET, u32(args), 0, 0, 0);
	report_raw("i386-socketcall-socket", fd);
	if (fd < 0)
		fd = socket(AF_INET, SOCK_STREAM, 0);
	args[0] = (uint32_t)fd;
	args[1] = (uint32_t)u32(sa);
	args[2] = sizeof *sa;
	report_raw("i386-socketcall-connect",
		   int80(I386_SOCKETCALL, SOCKETCALL_CONNECT, u32(args), 0, 0, 0));
	hold();
	return 0;
}

/* i386-connect IP PORT: connect through the direct i386 socket calls. */
static int a_i386_connect(int argc, char **argv)
{
	need_args(argc, 2, "i386-connect IP PORT");
	struct sockaddr_in *sa = low_page();
	fill_sin(sa, argv[0], argv[1]);
	ready();
	wait_go();
	long fd = int80(I386_SOCKET, AF_INET, SOCK_STREAM, 0, 0, 0);
	report_raw("i386-socket", fd);
	if (fd < 0)
		fd = socket(AF_INET, SOCK_STREAM, 0);
	report_raw("i386-connect", int80(I386_CONNECT, fd, u32(sa), sizeof *sa, 0, 0));
	hold();
	return 0;
}

/* i386-execve PROG OUTFILE: execve PROG (the marker) through int $0x80. */
static int a_i386_execve(int argc, char **argv)
{
	need_args(argc, 2, "i386-execve PROG OUTFILE");
	char *page = low_page();
	uint32_t *vec = (uint32_t *)page;
	char *strs = page + 64;
	const char *words[] = {argv[0], g_tag, "marker", argv[1]};
	for (int i = 0; i < 4; i++) {
		size_t len = strlen(words[i]) + 1;
		if (strs + len > page + 4096)
			_exit(2);
		memcpy(strs, words[i], len);
		vec[i] = (uint32_t)u32(strs);
		strs += len;
	}
	vec[4] = 0;
	ready();
	wait_go();
	long r = int80(I386_EXECVE, vec[0], u32(vec), 0, 0, 0);
	report_raw("i386-execve", r);
	return 0;
}

/* ioctl(2, TIOCSTI | 1<<32): push "X\n" into the terminal on stderr. */
static int a_hibit_tiocsti(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	ready();
	wait_go();
	pid_t c = fork();
	if (c == 0) {
		/* Become the terminal's session leader, as an unprivileged
		 * process needs a controlling terminal for TIOCSTI. */
		setsid();
		ioctl(2, TIOCSCTTY, 0);
		long r = 0;
		const char *text = "X\n";
		for (int i = 0; text[i] && r >= 0; i++)
			r = syscall(SYS_ioctl, 2, (unsigned long)TIOCSTI | (1UL << 32), &text[i]);
		report("hibit-tiocsti", r);
		/* Stay: the session leader's exit would hang the terminal up
		 * and flush what we pushed before the runner looks. */
		hold();
		_exit(0);
	}
	hold();
	waitpid(c, NULL, 0);
	return 0;
}

/* socket(FAMILY | 1<<32 or TYPE | 1<<32): a raw IP or packet socket. */
static int a_hibit_socket(int argc, char **argv)
{
	need_args(argc, 1, "hibit-socket raw|packet");
	ready();
	wait_go();
	long r;
	if (strcmp(argv[0], "raw") == 0)
		r = syscall(SYS_socket, AF_INET, (long)SOCK_RAW | (1L << 32), IPPROTO_ICMP);
	else
		r = syscall(SYS_socket, (long)AF_PACKET | (1L << 32), SOCK_RAW, htons(0x0003));
	report("hibit-socket", r);
	hold();
	return 0;
}

/* clone(CLONE_NEWUSER | SIGCHLD | 1<<32): a child in a new user namespace. */
static int a_hibit_clone(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	ready();
	wait_go();
	long r = syscall(SYS_clone, (unsigned long)(CLONE_NEWUSER | SIGCHLD) | (1UL << 32), 0, 0, 0, 0);
	if (r == 0) {
		hold();
		_exit(0);
	}
	report("hibit-clone", r);
	hold();
	if (r > 0)
		waitpid((pid_t)r, NULL, 0);
	return 0;
}

#define ALL_NS (CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | \
		CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWCGROUP)

/* clone3 with every namespace flag: the flags are in memory, not a register. */
static int a_clone3_ns(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	struct clone_args ca;
	memset(&ca, 0, sizeof ca);
	ca.flags = ALL_NS;
	ca.exit_signal = SIGCHLD;
	ready();
	wait_go();
	long r = syscall(SYS_clone3, &ca, sizeof ca);
	if (r == 0) {
		hold();
		_exit(0);
	}
	report("clone3", r);
	hold();
	if (r > 0)
		waitpid((pid_t)r, NULL, 0);
	return 0;
}

/*
 * high-nrs FIRST LAST: call every syscall number in [FIRST, LAST] with all
 * arguments -1 (bad fds, bad pointers, invalid flags), each in its own
 * child so that a kill ends only that probe. One line per number:
 *   NR <n> errno=<e> | NR <n> ok=<v> | NR <n> signal=<s>
 */
static int a_high_nrs(int argc, char **argv)
{
	need_args(argc, 2, "high-nrs FIRST LAST");
	long first = num(argv[0]), last = num(argv[1]);
	ready();
	wait_go();
	for (long nr = first; nr <= last; nr++) {
		int pfd[2];
		if (pipe(pfd) < 0)
			return 1;
		pid_t c = fork();
		if (c == 0) {
			close(pfd[0]);
			alarm(5);
			long r = syscall(nr, -1L, -1L, -1L, -1L, -1L, -1L);
			long out[2] = {r, r == -1 ? errno : 0};
			if (write(pfd[1], out, sizeof out) != sizeof out)
				_exit(1);
			_exit(0);
		}
		close(pfd[1]);
		long out[2];
		ssize_t got = read(pfd[0], out, sizeof out);
		close(pfd[0]);
		int st = 0;
		waitpid(c, &st, 0);
		if (got == sizeof out && out[0] == -1)
			say("NR %ld errno=%ld", nr, out[1]);
		else if (got == sizeof out)
			say("NR %ld ok=%ld", nr, out[0]);
		else if (WIFSIGNALED(st))
			say("NR %ld signal=%d", nr, WTERMSIG(st));
		else
			say("NR %ld lost=%d", nr, st);
	}
	say("DONE");
	return 0;
}

int main(int argc, char **argv)
{
	static const struct mode modes[] = {
		{"x32-probe", a_x32_probe},
		{"x32-unshare", a_x32_unshare},
		{"i386-unshare", a_i386_unshare},
		{"i386-ptrace", a_i386_ptrace},
		{"i386-socketcall", a_i386_socketcall},
		{"i386-connect", a_i386_connect},
		{"i386-execve", a_i386_execve},
		{"hibit-tiocsti", a_hibit_tiocsti},
		{"hibit-socket", a_hibit_socket},
		{"hibit-clone", a_hibit_clone},
		{"clone3-ns", a_clone3_ns},
		{"high-nrs", a_high_nrs},
		{0, 0},
	};
	return dispatch(modes, argc, argv);
}
