/*
 * probe: the test programs of crates/sandlock/tests run this inside (and
 * outside) sandboxes. Each operation prints one line, "OP ok" or
 * "OP errno=N", so that the test asserts what the kernel answered.
 *
 *   probe OP [ARGS...] [, OP [ARGS...]]...
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* A clone probe: the child (if the filter let it be born) leaves at once. */
static long reap(long ret)
{
	if (ret == 0)
		_exit(0);
	if (ret > 0)
		waitpid(ret, NULL, __WALL);
	return ret;
}

static int report(const char *op, long ret)
{
	if (ret < 0)
		printf("%s errno=%d\n", op, errno);
	else
		printf("%s ok\n", op);
	fflush(stdout);
	return ret < 0 ? 1 : 0;
}

#define SC(op, ...) report(op, syscall(__VA_ARGS__))
#define HI (1L << 32)
#ifndef SYS_open_tree_attr
#define SYS_open_tree_attr 467
#endif
#ifndef SYS_quotactl_fd
#define SYS_quotactl_fd 443
#endif
#ifndef SYS_lookup_dcookie
#define SYS_lookup_dcookie 212
#endif
#ifndef MFD_EXEC
#define MFD_EXEC 0x10
#endif

/* Every deny-list entry, with arguments the kernel would refuse (or act on
 * harmlessly) if the filter let the call through. */
static void deny_all(const char *scratch)
{
	char buf[64] = { 0 }, path[4096];
	struct iovec l = { buf, 8 }, r = { buf + 8, 8 };
	snprintf(path, sizeof path, "%s", scratch ? scratch : "/nonexistent");

	SC("mount", SYS_mount, "none", path, "tmpfs", 0, 0);
	SC("umount2", SYS_umount2, "/nonexistent-sandlock", 0);
	SC("pivot_root", SYS_pivot_root, "/nonexistent-a", "/nonexistent-b");
	SC("fsopen", SYS_fsopen, "tmpfs", 0);
	SC("fsconfig", SYS_fsconfig, -1, 0, 0, 0, 0);
	SC("fsmount", SYS_fsmount, -1, 0, 0);
	SC("fspick", SYS_fspick, AT_FDCWD, "/nonexistent-sandlock", 0);
	SC("move_mount", SYS_move_mount, -1, "", -1, "", 0);
	SC("open_tree", SYS_open_tree, AT_FDCWD, "/nonexistent-sandlock", 0);
	SC("open_tree_attr", SYS_open_tree_attr, AT_FDCWD, "/nonexistent-sandlock", 0, 0, 0);
	SC("mount_setattr", SYS_mount_setattr, -1, "", 0, 0, 0);
	SC("setns", SYS_setns, -1, 0);
	SC("ptrace", SYS_ptrace, 3, 999999999, 0, 0);
	SC("process_vm_readv", SYS_process_vm_readv, getpid(), &l, 1, &r, 1, 0);
	SC("process_vm_writev", SYS_process_vm_writev, getpid(), &l, 1, &r, 1, 0);
	long pidfd = syscall(SYS_pidfd_open, getpid(), 0);
	SC("pidfd_getfd", SYS_pidfd_getfd, pidfd, 0, 0);
	SC("kexec_load", SYS_kexec_load, 0, 0, 0, 0);
	SC("kexec_file_load", SYS_kexec_file_load, -1, -1, 0, 0, 0);
	SC("init_module", SYS_init_module, 0, 0, "");
	SC("finit_module", SYS_finit_module, -1, "", 0);
	SC("delete_module", SYS_delete_module, "sandlock_no_such_module", 0);
	SC("bpf", SYS_bpf, 0, 0, 0);
	SC("perf_event_open", SYS_perf_event_open, 0, 0, -1, -1, 0);
	long uf = syscall(SYS_userfaultfd, 1 /* UFFD_USER_MODE_ONLY */);
	report("userfaultfd", uf);
	SC("io_uring_setup", SYS_io_uring_setup, 1, 0);
	SC("io_uring_enter", SYS_io_uring_enter, -1, 0, 0, 0, 0, 0);
	SC("io_uring_register", SYS_io_uring_register, -1, 0, 0, 0);
	SC("keyctl", SYS_keyctl, 0 /* GET_KEYRING_ID */, -3 /* SESSION */, 0);
	SC("add_key", SYS_add_key, 0, 0, 0, 0, 0);
	SC("request_key", SYS_request_key, 0, 0, 0, 0);
	SC("open_by_handle_at", SYS_open_by_handle_at, -1, 0, 0);
	SC("name_to_handle_at", SYS_name_to_handle_at, AT_FDCWD, "/", buf, buf + 8, 0);
	SC("swapon", SYS_swapon, "/nonexistent-sandlock", 0);
	SC("swapoff", SYS_swapoff, "/nonexistent-sandlock");
	SC("reboot", SYS_reboot, 0, 0, 0, 0);
	SC("acct", SYS_acct, "/nonexistent-sandlock/x");
	struct timeval tv = { 0, 2000000 };
	SC("settimeofday", SYS_settimeofday, &tv, 0);
	struct timespec ts = { 0, -1 };
	SC("clock_settime", SYS_clock_settime, CLOCK_REALTIME, &ts);
	SC("clock_adjtime", SYS_clock_adjtime, -1, buf);
	char tx[256] = { 0 }; /* struct timex with modes 0: a read-only query */
	SC("adjtimex", SYS_adjtimex, tx);
	SC("quotactl", SYS_quotactl, 0, 0, 0, 0);
	SC("quotactl_fd", SYS_quotactl_fd, -1, 0, 0, 0);
	SC("lookup_dcookie", SYS_lookup_dcookie, 0, 0, 0);
#ifdef SYS_iopl
	SC("iopl", SYS_iopl, 0);
	SC("ioperm", SYS_ioperm, 0, 0, 0);
#endif
	int before = personality(0xffffffff);
	SC("personality_rie", SYS_personality, READ_IMPLIES_EXEC);
	SC("personality_hibit", SYS_personality, HI | READ_IMPLIES_EXEC);
	SC("personality_query", SYS_personality, 0xffffffffL);
	SC("personality_norandom", SYS_personality, ADDR_NO_RANDOMIZE);
	SC("personality_linux", SYS_personality, 0);
	printf("personality_unchanged %s\n",
	       (personality(0xffffffff) & READ_IMPLIES_EXEC) == (before & READ_IMPLIES_EXEC) ? "yes" : "no");
	int fd = open("/dev/null", O_RDONLY);
	SC("tiocsti", SYS_ioctl, fd, TIOCSTI, "x");
	SC("tiocsti_hibit", SYS_ioctl, fd, HI | TIOCSTI, "x");
	SC("tioclinux", SYS_ioctl, fd, TIOCLINUX, buf);
	SC("fionread", SYS_ioctl, fd, FIONREAD, buf);
	SC("socket_unix", SYS_socket, AF_UNIX, SOCK_STREAM, 0);
	SC("socket_netlink_route", SYS_socket, AF_NETLINK, SOCK_RAW, 0);
	SC("socket_netlink_audit", SYS_socket, AF_NETLINK, SOCK_RAW, 9);
	SC("socket_packet", SYS_socket, AF_PACKET, SOCK_RAW, 0);
	SC("socket_packet_hibit", SYS_socket, HI | AF_PACKET, SOCK_RAW, 0);
	SC("socket_inet_raw", SYS_socket, AF_INET, SOCK_RAW, 1);
	SC("socket_inet_raw_hibit", SYS_socket, AF_INET, HI | SOCK_RAW, 1);
	SC("socket_inet_tcp", SYS_socket, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	SC("socket_inet6_tcp", SYS_socket, AF_INET6, SOCK_STREAM, 6);
	SC("socket_inet_udp", SYS_socket, AF_INET, SOCK_DGRAM, 0);
	SC("socket_inet_mptcp", SYS_socket, AF_INET, SOCK_STREAM, 262);
	SC("socket_vsock", SYS_socket, 40 /* AF_VSOCK */, SOCK_STREAM, 0);
	report("clone_newuser", reap(syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0)));
	report("clone_hibit", reap(syscall(SYS_clone, HI | CLONE_NEWNET | SIGCHLD, 0, 0, 0, 0)));
	report("clone_plain", reap(syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0)));
	uint64_t args[11] = { 0 };
	args[4] = SIGCHLD; /* exit_signal */
	report("clone3", reap(syscall(SYS_clone3, args, sizeof args)));
	struct rlimit rl;
	SC("prlimit_parent", SYS_prlimit64, getppid(), RLIMIT_NOFILE, 0, &rl);
	SC("prlimit_self0", SYS_prlimit64, 0, RLIMIT_NOFILE, 0, &rl);
	SC("prlimit_self", SYS_prlimit64, getpid(), RLIMIT_NOFILE, 0, &rl);
	pid_t kid = fork();
	if (kid == 0) {
		pause();
		_exit(0);
	}
	SC("prlimit_child", SYS_prlimit64, kid, RLIMIT_NOFILE, 0, &rl);
	SC("setpriority_child", SYS_setpriority, PRIO_PROCESS, kid, 19);
	kill(kid, SIGKILL);
	waitpid(kid, NULL, 0);
	SC("setpriority_parent", SYS_setpriority, PRIO_PROCESS, getppid(), 1);
	SC("setpriority_user", SYS_setpriority, PRIO_USER, 0, 1);
	errno = 0;
	int nice_now = getpriority(PRIO_PROCESS, 0);
	SC("setpriority_self", SYS_setpriority, PRIO_PROCESS, 0, nice_now);
	cpu_set_t set;
	CPU_ZERO(&set);
	sched_getaffinity(0, sizeof set, &set);
	SC("sched_setaffinity_parent", SYS_sched_setaffinity, getppid(), sizeof set, &set);
	SC("sched_setaffinity_self", SYS_sched_setaffinity, 0, sizeof set, &set);
	char attr[56] = { 48 };
	SC("sched_setattr_parent", SYS_sched_setattr, getppid(), attr, 0);
	struct sched_param sp = { 0 };
	SC("sched_setscheduler_parent", SYS_sched_setscheduler, getppid(), SCHED_OTHER, &sp);
	SC("ioprio_set_parent", SYS_ioprio_set, 1, getppid(), 0);
	SC("ioprio_set_user", SYS_ioprio_set, 3, 0, 0);
	SC("x32_getpid", 0x40000000 | 39);
	/* Last: bare, these change the probe's own namespaces. */
	SC("unshare_files", SYS_unshare, CLONE_FILES);
	SC("unshare_hibit", SYS_unshare, HI | CLONE_NEWNS);
	SC("unshare_time", SYS_unshare, 0x80);
	SC("unshare_user", SYS_unshare, CLONE_NEWUSER);
	fflush(stdout);
}

static void memfd_exec(void)
{
	int mfd = memfd_create("probe", MFD_CLOEXEC);
	report("memfd_create", mfd);
	int src = open("/bin/true", O_RDONLY);
	char b[65536];
	ssize_t n;
	while (src >= 0 && mfd >= 0 && (n = read(src, b, sizeof b)) > 0)
		if (write(mfd, b, n) != n)
			break;
	report("memfd_fchmod", fchmod(mfd, 0755));
	pid_t p = fork();
	if (p == 0) {
		char *argv[] = { "true", NULL };
		syscall(SYS_execveat, mfd, "", argv, environ, AT_EMPTY_PATH);
		_exit(100 + errno);
	}
	int st;
	waitpid(p, &st, 0);
	printf("memfd_exec %s\n", WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "ran" : "refused");
	report("memfd_create_exec", memfd_create("probe", MFD_EXEC));
}

/* Runs one operation; returns how many words it used. */
static int op(int argc, char **argv)
{
	const char *o = argv[0];
	const char *a = argc > 1 ? argv[1] : "";
	if (!strcmp(o, "read")) {
		int fd = open(a, O_RDONLY);
		char c;
		if (fd >= 0 && read(fd, &c, 1) < 0)
			fd = -1;
		report("read", fd);
		return 2;
	}
	if (!strcmp(o, "write")) {
		int fd = open(a, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0 && write(fd, "x", 1) != 1)
			fd = -1;
		report("write", fd);
		return 2;
	}
	if (!strcmp(o, "trunc"))
		return report("trunc", truncate(a, 0)), 2;
	if (!strcmp(o, "ls")) {
		DIR *d = opendir(a);
		report("ls", d ? 0 : -1);
		return 2;
	}
	if (!strcmp(o, "mkdir"))
		return report("mkdir", mkdir(a, 0755)), 2;
	if (!strcmp(o, "unlink"))
		return report("unlink", unlink(a)), 2;
	if (!strcmp(o, "rename"))
		return report("rename", rename(a, argv[2])), 3;
	if (!strcmp(o, "link"))
		return report("link", link(a, argv[2])), 3;
	if (!strcmp(o, "symlink"))
		return report("symlink", symlink(a, argv[2])), 3;
	if (!strcmp(o, "exec")) {
		pid_t p = fork();
		if (p == 0) {
			char *av[] = { (char *)a, NULL };
			execv(a, av);
			_exit(100 + errno);
		}
		int st;
		waitpid(p, &st, 0);
		int code = WIFEXITED(st) ? WEXITSTATUS(st) : 0;
		errno = code >= 100 ? code - 100 : 0;
		report("exec", code >= 100 ? -1 : 0);
		return 2;
	}
	if (!strcmp(o, "deny"))
		return deny_all(argc > 1 && argv[1][0] == '/' ? argv[1] : NULL), argc > 1 && argv[1][0] == '/' ? 2 : 1;
	if (!strcmp(o, "memfd"))
		return memfd_exec(), 1;
	if (!strcmp(o, "fds")) {
		printf("fds");
		for (int fd = 0; fd < 4096; fd++)
			if (fcntl(fd, F_GETFD) >= 0)
				printf(" %d", fd);
		printf("\n");
		return 1;
	}
	if (!strcmp(o, "env")) {
		const char *v = getenv(a);
		printf("env %s=%s\n", a, v ? v : "<unset>");
		return 2;
	}
	if (!strcmp(o, "ids")) {
		printf("ids pid=%d ppid=%d pgid=%d sid=%d uid=%d\n", getpid(), getppid(), getpgid(0), getsid(0), getuid());
		return 1;
	}
	if (!strcmp(o, "limits")) {
		struct rlimit n, c;
		getrlimit(RLIMIT_NOFILE, &n);
		getrlimit(RLIMIT_CORE, &c);
		printf("limits nofile=%lu/%lu core=%lu/%lu\n", (unsigned long)n.rlim_cur, (unsigned long)n.rlim_max,
		       (unsigned long)c.rlim_cur, (unsigned long)c.rlim_max);
		return 1;
	}
	if (!strcmp(o, "persona")) {
		printf("persona %#x thp_disable=%d\n", personality(0xffffffff), prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0));
		return 1;
	}
	if (!strcmp(o, "affinity")) {
		cpu_set_t s;
		sched_getaffinity(0, sizeof s, &s);
		printf("affinity");
		for (int i = 0; i < CPU_SETSIZE; i++)
			if (CPU_ISSET(i, &s))
				printf(" %d", i);
		printf("\n");
		return 1;
	}
	if (!strcmp(o, "tty")) {
		printf("tty foreground=%s\n", tcgetpgrp(0) == getpgrp() ? "yes" : "no");
		return 1;
	}
	if (!strcmp(o, "cwd")) {
		char b[4096];
		printf("cwd %s\n", getcwd(b, sizeof b) ? b : "?");
		return 1;
	}
	if (!strcmp(o, "sleep")) {
		fflush(stdout);
		sleep(atoi(a));
		return 2;
	}
	if (!strcmp(o, "line")) {
		/* Flushes, then waits for one line on stdin: "line got" or "line eof". */
		char c = 0;
		fflush(stdout);
		while (read(0, &c, 1) == 1 && c != '\n')
			;
		printf("line %s\n", c == '\n' ? "got" : "eof");
		return 1;
	}
	if (!strcmp(o, "exit")) {
		fflush(stdout);
		_exit(atoi(a));
	}
	if (!strcmp(o, "kill")) {
		fflush(stdout);
		kill(getpid(), atoi(a));
		sleep(5);
		return 2;
	}
	if (!strcmp(o, "killpg")) {
		/* Signal every process we may: the sandbox must keep it inside. */
		return report("kill_minus_one", kill(atoi(a), 0)), 2;
	}
	if (!strcmp(o, "int80")) {
		fflush(stdout);
		long ret;
		/* i386 getpid (20) through the 32-bit entry. */
		__asm__ volatile("int $0x80" : "=a"(ret) : "a"(20) : "memory");
		printf("int80 returned %ld\n", ret);
		return 1;
	}
	if (!strcmp(o, "spawn")) {
		/* spawn N OP...: run the rest in a child (N=2: in a grandchild too). */
		int depth = atoi(a);
		pid_t p = fork();
		if (p == 0) {
			if (depth > 1) {
				char d[16];
				snprintf(d, sizeof d, "%d", depth - 1);
				argv[1] = d;
				exit(op(argc, argv) >= 0 ? 0 : 1);
			}
			int i = 2;
			while (i < argc)
				i += op(argc - i, argv + i);
			fflush(stdout);
			_exit(0);
		}
		int st;
		waitpid(p, &st, 0);
		return argc;
	}
	if (!strcmp(o, "daemon")) {
		/* daemon PIDFILE: a setsid grandchild that sleeps and records its pid. */
		pid_t p = fork();
		if (p == 0) {
			setsid();
			if (fork() == 0) {
				/* Let go of the caller's pipes: it waits for them. */
				int null = open("/dev/null", O_RDWR);
				dup2(null, 1);
				dup2(null, 2);
				FILE *f = fopen(a, "w");
				if (f) {
					fprintf(f, "%d\n", getpid());
					fclose(f);
				}
				sleep(60);
				_exit(0);
			}
			_exit(0);
		}
		waitpid(p, NULL, 0);
		return 2;
	}
	if (!strcmp(o, "bg")) {
		/* bg PIDFILE: a child in our process group that sleeps. */
		if (fork() == 0) {
			FILE *f = fopen(a, "w");
			if (f) {
				fprintf(f, "%d\n", getpid());
				fclose(f);
			}
			sleep(60);
			_exit(0);
		}
		usleep(100000);
		return 2;
	}
	if (!strcmp(o, "cat")) {
		/* The first line of a file: "cat LINE" or "cat errno=N". */
		char line[256] = { 0 };
		FILE *f = fopen(a, "r");
		if (!f)
			return report("cat", -1), 2;
		if (!fgets(line, sizeof line, f))
			line[0] = 0;
		fclose(f);
		line[strcspn(line, "\n")] = 0;
		printf("cat %s\n", line);
		return 2;
	}
	if (!strcmp(o, "chroot"))
		return report("chroot", chroot(a)), 2;
	if (!strcmp(o, "umount"))
		return report("umount", umount2(a, MNT_DETACH)), 2;
	if (!strcmp(o, "count")) {
		/* Entries of a directory but . and ..: "count N" or "count errno=N". */
		DIR *d = opendir(a);
		if (!d)
			return report("count", -1), 2;
		int n = 0;
		struct dirent *e;
		while ((e = readdir(d)))
			n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
		closedir(d);
		printf("count %d\n", n);
		return 2;
	}
	if (!strcmp(o, "fdread")) {
		/* Reads PATH relative to descriptor FD: "fdread FD PATH". */
		int fd = openat(atoi(a), argc > 2 ? argv[2] : "", O_RDONLY);
		char c;
		if (fd >= 0 && read(fd, &c, 1) < 0)
			fd = -1;
		report("fdread", fd);
		return 3;
	}
	if (!strcmp(o, "tmpwrite")) {
		/* Creates a file in $TMPDIR. */
		char path[4096];
		const char *t = getenv("TMPDIR");
		snprintf(path, sizeof path, "%s/probe-tmp", t ? t : "/nonexistent-tmpdir");
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
		report("tmpwrite", fd);
		return 1;
	}
	if (!strcmp(o, "echo")) {
		printf("%s\n", a);
		return 2;
	}
	if (!strcmp(o, "stderr")) {
		fprintf(stderr, "%s\n", a);
		return 2;
	}
	if (!strcmp(o, ","))
		return 1;
	printf("unknown %s\n", o);
	exit(2);
}

int main(int argc, char **argv)
{
	int i = 1;
	while (i < argc)
		i += op(argc - i, argv + i);
	fflush(stdout);
	return 0;
}
