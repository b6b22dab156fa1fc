/*
 * fsprobe: the filesystem deny-rule tests (tests/fsdeny.rs) run this inside
 * sandboxes. Each operation prints one line, "LABEL ok", "LABEL errno=N"
 * or "LABEL VALUE", so that the test asserts what the kernel answered.
 *
 *   fsprobe OP[.TAG] ARGS... [OP[.TAG] ARGS...]...
 *
 * The label is the word as given (OP.TAG), so one run may repeat an op.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

static const char *label;

static int report(long ret)
{
	if (ret < 0)
		printf("%s errno=%d\n", label, errno);
	else
		printf("%s ok\n", label);
	fflush(stdout);
	return 0;
}

/* Reads the first line of an open file and prints it as the value. */
static void show(int fd)
{
	char b[256];
	ssize_t n = fd >= 0 ? read(fd, b, sizeof b - 1) : -1;
	if (n < 0) {
		report(-1);
		return;
	}
	b[n] = 0;
	char *nl = strchr(b, '\n');
	if (nl)
		*nl = 0;
	printf("%s %s\n", label, n ? b : "<empty>");
	fflush(stdout);
}

struct flip {
	volatile int stop;
	char a[512], b[512];
	char buf[512];
	size_t len;
};

static void *flipper(void *p)
{
	struct flip *f = p;
	while (!f->stop) {
		memcpy(f->buf, f->a, f->len);
		memcpy(f->buf, f->b, f->len);
	}
	return NULL;
}

/* flip GOOD BAD N: N opens of a buffer a thread flips between GOOD and
 * BAD (same length); prints how many opens returned the BAD file (its
 * first byte is 'B', GOOD's is 'G'). */
static void flip(const char *good, const char *bad, int n)
{
	struct flip f = {.len = strlen(good) + 1};
	if (f.len != strlen(bad) + 1 || f.len > sizeof f.a) {
		printf("%s bad-args\n", label);
		return;
	}
	memcpy(f.a, good, f.len);
	memcpy(f.b, bad, f.len);
	memcpy(f.buf, good, f.len);
	pthread_t t;
	pthread_create(&t, NULL, flipper, &f);
	int good_n = 0, bad_n = 0;
	for (int i = 0; i < n; i++) {
		int fd = open(f.buf, O_RDONLY);
		if (fd < 0)
			continue;
		char c = 0;
		if (read(fd, &c, 1) == 1) {
			if (c == 'B')
				bad_n++;
			else
				good_n++;
		}
		close(fd);
	}
	f.stop = 1;
	pthread_join(t, NULL);
	printf("%s good=%d bad=%d\n", label, good_n, bad_n);
	fflush(stdout);
}

static int op(int argc, char **argv)
{
	char name[64];
	label = argv[0];
	snprintf(name, sizeof name, "%s", argv[0]);
	char *dot = strchr(name, '.');
	if (dot)
		*dot = 0;
	const char *a = argc > 1 ? argv[1] : "";
	const char *b = argc > 2 ? argv[2] : "";
	if (!strcmp(name, "read")) {
		int fd = open(a, O_RDONLY);
		show(fd);
		if (fd >= 0)
			close(fd);
		return 2;
	}
	if (!strcmp(name, "write")) {
		int fd = open(a, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0 && write(fd, "W\n", 2) != 2)
			fd = -1;
		report(fd);
		if (fd >= 0)
			close(fd);
		return 2;
	}
	if (!strcmp(name, "append")) {
		int fd = open(a, O_WRONLY | O_APPEND);
		if (fd >= 0 && write(fd, "A\n", 2) != 2)
			fd = -1;
		report(fd);
		if (fd >= 0)
			close(fd);
		return 2;
	}
	if (!strcmp(name, "opath"))
		return report(open(a, O_PATH)), 2;
	if (!strcmp(name, "readat")) {
		/* readat DIR REL: openat relative to an O_DIRECTORY descriptor */
		int d = open(a, O_RDONLY | O_DIRECTORY);
		int fd = d >= 0 ? openat(d, b, O_RDONLY) : -1;
		show(fd);
		if (fd >= 0)
			close(fd);
		if (d >= 0)
			close(d);
		return 3;
	}
	if (!strcmp(name, "readpath")) {
		/* readpath DIR REL: like readat, from an O_PATH descriptor */
		int d = open(a, O_PATH | O_DIRECTORY);
		int fd = d >= 0 ? openat(d, b, O_RDONLY) : -1;
		show(fd);
		if (fd >= 0)
			close(fd);
		if (d >= 0)
			close(d);
		return 3;
	}
	if (!strcmp(name, "ls")) {
		DIR *d = opendir(a);
		if (!d)
			return report(-1), 2;
		int n = 0;
		while (readdir(d))
			n++;
		closedir(d);
		printf("%s entries=%d\n", label, n);
		fflush(stdout);
		return 2;
	}
	if (!strcmp(name, "stat")) {
		struct stat st;
		return report(stat(a, &st)), 2;
	}
	if (!strcmp(name, "lstat")) {
		struct stat st;
		return report(lstat(a, &st)), 2;
	}
	if (!strcmp(name, "size")) {
		struct stat st;
		if (stat(a, &st) < 0)
			return report(-1), 2;
		printf("%s %lld\n", label, (long long)st.st_size);
		fflush(stdout);
		return 2;
	}
	if (!strcmp(name, "statx")) {
		struct statx st;
		return report(statx(AT_FDCWD, a, 0, STATX_BASIC_STATS, &st)), 2;
	}
	if (!strcmp(name, "access"))
		return report(access(a, R_OK)), 2;
	if (!strcmp(name, "readlink")) {
		char t[512];
		ssize_t n = readlink(a, t, sizeof t - 1);
		if (n < 0)
			return report(-1), 2;
		t[n] = 0;
		printf("%s %s\n", label, t);
		fflush(stdout);
		return 2;
	}
	if (!strcmp(name, "getxattr")) {
		char v[64];
		return report(getxattr(a, "user.x", v, sizeof v)), 2;
	}
	if (!strcmp(name, "chmod"))
		return report(chmod(a, 0600)), 2;
	if (!strcmp(name, "chown"))
		return report(chown(a, getuid(), getgid())), 2;
	if (!strcmp(name, "utime"))
		return report(utimensat(AT_FDCWD, a, NULL, 0)), 2;
	if (!strcmp(name, "trunc"))
		return report(truncate(a, 0)), 2;
	if (!strcmp(name, "mkdir"))
		return report(mkdir(a, 0755)), 2;
	if (!strcmp(name, "rmdir"))
		return report(rmdir(a)), 2;
	if (!strcmp(name, "unlink"))
		return report(unlink(a)), 2;
	if (!strcmp(name, "rename"))
		return report(rename(a, b)), 3;
	if (!strcmp(name, "exchange"))
		return report(syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, 2 /* RENAME_EXCHANGE */)), 3;
	if (!strcmp(name, "link"))
		return report(link(a, b)), 3;
	if (!strcmp(name, "symlink"))
		return report(symlink(a, b)), 3;
	if (!strcmp(name, "mkfifo"))
		return report(mkfifo(a, 0644)), 2;
	if (!strcmp(name, "umask"))
		return umask((mode_t)strtol(a, NULL, 8)), 2;
	if (!strcmp(name, "mode")) {
		struct stat st;
		if (stat(a, &st) < 0)
			return report(-1), 2;
		printf("%s %o\n", label, st.st_mode & 07777);
		fflush(stdout);
		return 2;
	}
	if (!strcmp(name, "cd"))
		return report(chdir(a)), 2;
	if (!strcmp(name, "exec")) {
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
		if (WIFSIGNALED(st)) {
			printf("%s signal=%d\n", label, WTERMSIG(st));
			fflush(stdout);
		} else {
			report(code >= 100 ? -1 : 0);
		}
		return 2;
	}
	if (!strcmp(name, "opens")) {
		/* opens N PATH: N opens of PATH; "ok", or the last errno and
		 * how many failed. */
		int n = atoi(a), failed = 0, last = 0;
		for (int i = 0; i < n; i++) {
			int fd = open(b, O_RDONLY | O_CLOEXEC);
			if (fd < 0) {
				failed++;
				last = errno;
			} else {
				close(fd);
			}
		}
		if (failed)
			printf("%s errno=%d failed=%d\n", label, last, failed);
		else
			printf("%s ok\n", label);
		fflush(stdout);
		return 3;
	}
	if (!strcmp(name, "flip"))
		return flip(a, b, atoi(argc > 3 ? argv[3] : "1000")), 4;
	printf("%s unknown-op\n", label);
	return argc;
}

int main(int argc, char **argv)
{
	int i = 1;
	while (i < argc)
		i += op(argc - i, argv + i);
	return 0;
}
