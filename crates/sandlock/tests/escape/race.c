/*
 * Attack class 4: changing a pointer argument between the supervisor's
 * check and the kernel's use; and (modes exchange and swap*) changing
 * what a path names on disk, from outside the sandbox, while the sandbox
 * opens it.
 *
 * A buffer alternates between an allowed value A and a refused value B as
 * fast as a "flipper" can write it, while the main thread passes it to the
 * syscall under test thousands of times. Three flippers, three ways to
 * share the memory:
 *   thread   a sibling thread of the same process;
 *   clonevm  a separate process made with clone(CLONE_VM);
 *   memfd    a separate process (fork) mapping the same memfd MAP_SHARED.
 * A and B always have the same length, so a torn read is still A or B.
 */
#include "common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#define NR_OPENAT2 437
#define NR_RENAMEAT2 316
#define RENAME_EXCHANGE_FLAG 2

struct shared {
	volatile int stop;
	volatile int running;
	size_t len;
	char a[512], b[512];
	char buf[512] __attribute__((aligned(64)));
};

static void flip(struct shared *s)
{
	s->running = 1;
	while (!s->stop) {
		memcpy(s->buf, s->a, s->len);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		memcpy(s->buf, s->b, s->len);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
	}
}

static void *flip_thread(void *p)
{
	flip(p);
	return NULL;
}

static int flip_clone(void *p)
{
	flip(p);
	return 0;
}

struct flipper {
	const char *kind;
	pthread_t thread;
	pid_t pid;
	int memfd;
};

/* Map the shared region the way KIND shares it. */
static struct shared *region(struct flipper *f)
{
	void *p;
	if (strcmp(f->kind, "memfd") == 0) {
		f->memfd = memfd_create("race", MFD_CLOEXEC);
		if (f->memfd < 0 || ftruncate(f->memfd, sizeof(struct shared)) < 0) {
			report("memfd", -1);
			_exit(1);
		}
		p = mmap(NULL, sizeof(struct shared), PROT_READ | PROT_WRITE, MAP_SHARED, f->memfd, 0);
	} else if (strcmp(f->kind, "thread") == 0 || strcmp(f->kind, "clonevm") == 0) {
		p = mmap(NULL, sizeof(struct shared), PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	} else {
		say("ERROR unknown flipper %s", f->kind);
		_exit(2);
	}
	if (p == MAP_FAILED) {
		report("mmap", -1);
		_exit(1);
	}
	memset(p, 0, sizeof(struct shared));
	return p;
}

static void start(struct flipper *f, struct shared *s)
{
	memcpy(s->buf, s->a, s->len);
	if (strcmp(f->kind, "thread") == 0) {
		errno = pthread_create(&f->thread, NULL, flip_thread, s);
		report("flipper-thread", errno ? -1 : 0);
	} else if (strcmp(f->kind, "clonevm") == 0) {
		size_t sz = 256 * 1024;
		char *stack = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		f->pid = clone(flip_clone, stack + sz, CLONE_VM | SIGCHLD, s);
		report("flipper-clonevm", f->pid);
	} else {
		f->pid = fork();
		if (f->pid == 0) {
			/* Our own mapping of the same memfd. */
			struct shared *mine = mmap(NULL, sizeof *mine, PROT_READ | PROT_WRITE,
						   MAP_SHARED, f->memfd, 0);
			if (mine == MAP_FAILED)
				_exit(1);
			munmap(s, sizeof *s);
			flip(mine);
			_exit(0);
		}
		report("flipper-memfd", f->pid);
	}
	/* Race only once the flipper really runs (bounded: about 10 s). */
	for (int i = 0; i < 10000 && !s->running; i++)
		usleep(1000);
	say("FLIPPING %d", s->running);
}

static void stop(struct flipper *f, struct shared *s)
{
	s->stop = 1;
	if (strcmp(f->kind, "thread") == 0)
		pthread_join(f->thread, NULL);
	else if (f->pid > 0)
		waitpid(f->pid, NULL, 0);
}

static void tally(const char *what, long ok, long failed, int last_errno)
{
	say("RESULT %s ok=%ld failed=%ld last_errno=%d", what, ok, failed, last_errno);
}

/* net METHOD FLIPPER GOOD_IP BAD_IP PORT ITERS */
static int a_net(int argc, char **argv)
{
	need_args(argc, 6, "net connect|sendto|sendmsg|sendmmsg FLIPPER GOOD BAD PORT ITERS");
	const char *method = argv[0];
	struct flipper f = {.kind = argv[1]};
	struct shared *s = region(&f);
	struct sockaddr_in good, bad;
	memset(&good, 0, sizeof good);
	good.sin_family = AF_INET;
	good.sin_port = htons((uint16_t)num(argv[4]));
	bad = good;
	if (inet_pton(AF_INET, argv[2], &good.sin_addr) != 1 ||
	    inet_pton(AF_INET, argv[3], &bad.sin_addr) != 1)
		return 2;
	memcpy(s->a, &good, sizeof good);
	memcpy(s->b, &bad, sizeof bad);
	s->len = sizeof good;
	long iters = num(argv[5]);
	int tcp = strcmp(method, "connect") == 0;
	int udp = tcp ? -1 : socket(AF_INET, SOCK_DGRAM, 0);
	ready();
	wait_go();
	start(&f, s);
	long ok = 0, failed = 0;
	int last = 0;
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	for (long i = 0; i < iters; i++) {
		/* On a busy machine the flipper may share our CPU: let it run. */
		if ((i & 31) == 31)
			sched_yield();
		long r;
		struct sockaddr *sa = (struct sockaddr *)s->buf;
		char byte = 'x';
		struct iovec iov = {.iov_base = &byte, .iov_len = 1};
		if (tcp) {
			int fd = socket(AF_INET, SOCK_STREAM, 0);
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
			r = connect(fd, sa, sizeof good);
			close(fd);
		} else if (strcmp(method, "sendto") == 0) {
			r = sendto(udp, &byte, 1, 0, sa, sizeof good);
		} else if (strcmp(method, "sendmsg") == 0) {
			struct msghdr m = {.msg_name = sa, .msg_namelen = sizeof good,
					   .msg_iov = &iov, .msg_iovlen = 1};
			r = sendmsg(udp, &m, 0);
		} else if (strcmp(method, "sendmmsg") == 0) {
			/* A fixed allowed entry first, then the flipping one. */
			struct mmsghdr mm[2];
			memset(mm, 0, sizeof mm);
			mm[0].msg_hdr.msg_name = &good;
			mm[0].msg_hdr.msg_namelen = sizeof good;
			mm[0].msg_hdr.msg_iov = &iov;
			mm[0].msg_hdr.msg_iovlen = 1;
			mm[1].msg_hdr = mm[0].msg_hdr;
			mm[1].msg_hdr.msg_name = sa;
			r = sendmmsg(udp, mm, 2, 0);
		} else {
			say("ERROR unknown method %s", method);
			return 2;
		}
		if (r < 0) {
			failed++;
			last = errno;
		} else {
			ok++;
		}
	}
	stop(&f, s);
	tally(method, ok, failed, last);
	return 0;
}

/* open SYSCALL FLIPPER GOOD_PATH BAD_PATH ITERS: append "R" through the flipped path. */
static int a_open(int argc, char **argv)
{
	need_args(argc, 5, "open open|openat|openat2|creat FLIPPER GOOD BAD ITERS");
	const char *call = argv[0];
	struct flipper f = {.kind = argv[1]};
	struct shared *s = region(&f);
	size_t len = strlen(argv[2]) + 1;
	if (len != strlen(argv[3]) + 1 || len > sizeof s->a) {
		say("ERROR paths must have the same length");
		return 2;
	}
	memcpy(s->a, argv[2], len);
	memcpy(s->b, argv[3], len);
	s->len = len;
	long iters = num(argv[4]);
	struct {
		uint64_t flags, mode, resolve;
	} how = {.flags = O_WRONLY | O_APPEND, .mode = 0, .resolve = 0};
	ready();
	wait_go();
	start(&f, s);
	long ok = 0, failed = 0;
	int last = 0;
	for (long i = 0; i < iters; i++) {
		if ((i & 31) == 31)
			sched_yield();
		long fd;
		if (strcmp(call, "open") == 0)
			fd = open(s->buf, O_WRONLY | O_APPEND);
		else if (strcmp(call, "openat") == 0)
			fd = openat(AT_FDCWD, s->buf, O_WRONLY | O_APPEND);
		else if (strcmp(call, "openat2") == 0)
			fd = syscall(NR_OPENAT2, AT_FDCWD, s->buf, &how, sizeof how);
		else if (strcmp(call, "creat") == 0)
			fd = creat(s->buf, 0644);
		else {
			say("ERROR unknown call %s", call);
			return 2;
		}
		if (fd < 0) {
			failed++;
			last = errno;
			continue;
		}
		ok++;
		if (write((int)fd, "R", 1) != 1)
			last = errno;
		close((int)fd);
	}
	stop(&f, s);
	tally(call, ok, failed, last);
	return 0;
}

/*
 * exec FLIPPER GOOD_PROG BAD_PROG OUTFILE ITERS: clone(CLONE_VFORK) + execve of the
 * flipped path (the marker appends what the kernel ran to OUTFILE).
 * argv FLIPPER PROG OUTFILE GOOD_ARG BAD_ARG ITERS: execve of a fixed
 * path whose last argument is the flipped buffer.
 */
struct exec_req {
	char *path;
	char **args;
};

static int exec_child(void *p)
{
	struct exec_req *req = p;
	char *envp[] = {NULL};
	execve(req->path, req->args, envp);
	_exit(100 + errno);
}

/*
 * ITERS times: clone(CLONE_VM | CLONE_VFORK) + execve of REQ, waited for.
 * The child shares our memory (and so any flipped buffer) until its
 * execve has copied the path and argv. Tallies the exits as WHAT.
 */
static int exec_loop(struct exec_req *req, long iters, const char *what,
		     struct shared *s, struct flipper *f)
{
	size_t sz = 256 * 1024;
	char *stack = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (stack == MAP_FAILED)
		return 1;
	if (f)
		start(f, s);
	long ok = 0, failed = 0;
	int last = 0;
	for (long i = 0; i < iters; i++) {
		pid_t c = clone(exec_child, stack + sz, CLONE_VM | CLONE_VFORK | SIGCHLD, req);
		int st = 0;
		if (c < 0 || waitpid(c, &st, 0) < 0) {
			failed++;
			last = errno;
		} else if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
			ok++;
		} else {
			failed++;
			last = WIFEXITED(st) ? WEXITSTATUS(st) - 100 : -WTERMSIG(st);
		}
	}
	if (f)
		stop(f, s);
	tally(what, ok, failed, last);
	return 0;
}

static int run_execs(struct shared *s, struct flipper *f, char *fixed_path, char *out,
		     int flip_path, long iters)
{
	char *args[] = {"marker", (char *)g_tag, "marker", out, flip_path ? NULL : s->buf, NULL};
	struct exec_req req = {.path = flip_path ? s->buf : fixed_path, .args = args};
	return exec_loop(&req, iters, flip_path ? "exec" : "argv", s, f);
}

static int a_exec(int argc, char **argv)
{
	need_args(argc, 5, "exec FLIPPER GOOD_PROG BAD_PROG OUTFILE ITERS");
	struct flipper f = {.kind = argv[0]};
	struct shared *s = region(&f);
	size_t len = strlen(argv[1]) + 1;
	if (len != strlen(argv[2]) + 1 || len > sizeof s->a)
		return 2;
	memcpy(s->a, argv[1], len);
	memcpy(s->b, argv[2], len);
	s->len = len;
	ready();
	wait_go();
	return run_execs(s, &f, NULL, argv[3], 1, num(argv[4]));
}

static int a_argv(int argc, char **argv)
{
	need_args(argc, 6, "argv FLIPPER PROG OUTFILE GOOD_ARG BAD_ARG ITERS");
	struct flipper f = {.kind = argv[0]};
	struct shared *s = region(&f);
	size_t len = strlen(argv[3]) + 1;
	if (len != strlen(argv[4]) + 1 || len > sizeof s->a)
		return 2;
	memcpy(s->a, argv[3], len);
	memcpy(s->b, argv[4], len);
	s->len = len;
	ready();
	wait_go();
	return run_execs(s, &f, argv[1], argv[2], 0, num(argv[5]));
}

/*
 * exchange A B: swaps the two names (renameat2 RENAME_EXCHANGE) as fast as
 * it can, until a line (or end of file) arrives on stdin. Run bare, outside
 * the sandbox: a symlink and its target, or a directory and a symlink,
 * trade places under the sandboxed opener.
 */
static int a_exchange(int argc, char **argv)
{
	need_args(argc, 2, "exchange A B");
	long swaps = 0;
	int last = 0;
	ready();
	for (;;) {
		for (int i = 0; i < 256; i++) {
			if (syscall(NR_RENAMEAT2, AT_FDCWD, argv[0], AT_FDCWD, argv[1],
				    RENAME_EXCHANGE_FLAG) == 0)
				swaps++;
			else
				last = errno;
		}
		struct pollfd p = {.fd = 0, .events = POLLIN};
		if (poll(&p, 1, 0) != 0)
			break;
	}
	tally("exchange", swaps, 0, last);
	return 0;
}

/*
 * swapop write|unlink|chmod|rename|link PATH ITERS [DEST], ITERS times:
 *   write   open PATH for appending and write "R";
 *   unlink  create PATH (if it can), then unlink it;
 *   chmod   chmod PATH 0600;
 *   rename  create PATH (if it can), then rename it to DEST.N;
 *   link    hard-link PATH to DEST.N.
 */
static int a_swapop(int argc, char **argv)
{
	need_args(argc, 3, "swapop write|unlink|chmod|rename|link PATH ITERS [DEST]");
	const char *op = argv[0], *path = argv[1];
	int moves = strcmp(op, "rename") == 0 || strcmp(op, "link") == 0;
	if (strcmp(op, "write") != 0 && strcmp(op, "unlink") != 0 && strcmp(op, "chmod") != 0 &&
	    !moves) {
		say("ERROR unknown op %s", op);
		return 2;
	}
	if (moves && argc < 4) {
		say("ERROR %s needs DEST", op);
		return 2;
	}
	long iters = num(argv[2]);
	ready();
	wait_go();
	long ok = 0, failed = 0;
	int last = 0;
	char dest[4096];
	for (long i = 0; i < iters; i++) {
		if ((i & 31) == 31)
			sched_yield();
		int r;
		if (moves)
			snprintf(dest, sizeof dest, "%s.%ld", argv[3], i);
		if (strcmp(op, "write") == 0) {
			int fd = open(path, O_WRONLY | O_APPEND);
			r = fd < 0 ? -1 : 0;
			if (fd >= 0) {
				if (write(fd, "R", 1) != 1)
					last = errno;
				close(fd);
			}
		} else if (strcmp(op, "unlink") == 0 || strcmp(op, "rename") == 0) {
			int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
			if (fd >= 0)
				close(fd);
			r = op[0] == 'u' ? unlink(path) : rename(path, dest);
		} else if (strcmp(op, "link") == 0) {
			r = link(path, dest);
		} else {
			r = chmod(path, 0600);
		}
		if (r < 0) {
			failed++;
			last = errno;
		} else {
			ok++;
		}
	}
	tally(op, ok, failed, last);
	return 0;
}

/*
 * swapconnect stream|dgram PATH ITERS: connect a unix stream socket to
 * PATH, or send a datagram to it, ITERS times.
 */
static int a_swapconnect(int argc, char **argv)
{
	need_args(argc, 3, "swapconnect stream|dgram PATH ITERS");
	int stream = strcmp(argv[0], "stream") == 0;
	struct sockaddr_un su = {.sun_family = AF_UNIX};
	if (strlen(argv[1]) >= sizeof su.sun_path) {
		say("ERROR path too long");
		return 2;
	}
	strcpy(su.sun_path, argv[1]);
	long iters = num(argv[2]);
	int dgram = stream ? -1 : socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ready();
	wait_go();
	long ok = 0, failed = 0;
	int last = 0;
	for (long i = 0; i < iters; i++) {
		if ((i & 31) == 31)
			sched_yield();
		long r;
		if (stream) {
			int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
			r = fd < 0 ? -1 : connect(fd, (struct sockaddr *)&su, sizeof su);
			if (fd >= 0) {
				int e = errno;
				close(fd);
				errno = e;
			}
		} else {
			r = sendto(dgram, "x", 1, 0, (struct sockaddr *)&su, sizeof su);
		}
		if (r < 0) {
			failed++;
			last = errno;
		} else {
			ok++;
		}
	}
	tally("swapconnect", ok, failed, last);
	return 0;
}

/*
 * swapexec PATH OUTFILE ITERS: clone(CLONE_VFORK) + execve of PATH as the
 * helpers' exemarker (which appends the file it is an image of to OUTFILE).
 */
static int a_swapexec(int argc, char **argv)
{
	need_args(argc, 3, "swapexec PATH OUTFILE ITERS");
	char *args[] = {"marker", (char *)g_tag, "exemarker", argv[1], NULL};
	struct exec_req req = {.path = argv[0], .args = args};
	long iters = num(argv[2]);
	ready();
	wait_go();
	return exec_loop(&req, iters, "swapexec", NULL, NULL);
}

int main(int argc, char **argv)
{
	static const struct mode modes[] = {
		{"net", a_net},
		{"open", a_open},
		{"exec", a_exec},
		{"argv", a_argv},
		{"exchange", a_exchange},
		{"swapop", a_swapop},
		{"swapexec", a_swapexec},
		{"swapconnect", a_swapconnect},
		{0, 0},
	};
	return dispatch(modes, argc, argv);
}
