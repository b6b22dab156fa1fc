/*
 * Trusted tools of the escape suite: the runner starts these bare, as
 * targets (sentinel, nsholder), observers (keyfind, handle) and wrappers
 * (pidns, leak-exec, nolandlock, nest-notify). `marker` is the program that
 * attacks try to execute: it appends the path the kernel executed
 * (AT_EXECFN) to a file, so a run shows up as a line the runner can count.
 */
#include "common.h"

#include <linux/filter.h>
#include <linux/io_uring.h>
#include <linux/keyctl.h>
#include <linux/seccomp.h>
#include <mqueue.h>
#include <sched.h>
#include <stddef.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/msg.h>
#include <sys/prctl.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/uio.h>

#ifndef PR_SET_PTRACER_ANY
#define PR_SET_PTRACER_ANY ((unsigned long)-1)
#endif

/* A process the attacks aim at in place of the supervisor when run bare. */
static char g_secret[256];

static int m_sentinel(int argc, char **argv)
{
	/* Let any same-uid process attach, as Yama would otherwise refuse. */
	prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
	snprintf(g_secret, sizeof g_secret, "%s", argc > 0 ? argv[0] : "none");
	int mfd = memfd_create("sentinel-object", 0);
	say("READY");
	say("ADDR %p %zu FD %d", (void *)g_secret, strlen(g_secret), mfd);
	hold();
	say("SECRET %s", g_secret);
	return 0;
}

static int m_marker(int argc, char **argv)
{
	need_args(argc, 1, "marker OUTFILE [WORDS...]");
	const char *fn = (const char *)getauxval(AT_EXECFN);
	if (!fn)
		fn = "(no AT_EXECFN)";
	int fd = open(argv[0], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
	if (fd < 0) {
		report("marker-open", -1);
		return 1;
	}
	char line[4200];
	int n = snprintf(line, sizeof line, "%s", fn);
	for (int i = 1; i < argc && n < (int)sizeof line - 2; i++)
		n += snprintf(line + n, sizeof line - (size_t)n, " %s", argv[i]);
	if (n > (int)sizeof line - 2)
		n = (int)sizeof line - 2;
	line[n++] = '\n';
	if (write(fd, line, (size_t)n) != n) {
		report("marker-write", -1);
		return 1;
	}
	close(fd);
	say("MARKED %s", fn);
	return 0;
}

/*
 * exemarker OUTFILE: appends the file this process is an image of
 * (/proc/self/exe), which tells two copies apart when both were run
 * through the same symlink (AT_EXECFN is then the symlink's name).
 */
static int m_exemarker(int argc, char **argv)
{
	need_args(argc, 1, "exemarker OUTFILE");
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 2);
	if (n < 0) {
		report("exemarker-readlink", -1);
		return 1;
	}
	exe[n++] = '\n';
	int fd = open(argv[0], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
	if (fd < 0 || write(fd, exe, (size_t)n) != n) {
		report("exemarker-write", -1);
		return 1;
	}
	close(fd);
	return 0;
}

static int m_nsholder(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	if (unshare(CLONE_NEWUSER | CLONE_NEWUTS) < 0) {
		report("nsholder-unshare", -1);
		return 1;
	}
	say("READY");
	hold();
	return 0;
}

static int m_keyfind(int argc, char **argv)
{
	need_args(argc, 1, "keyfind DESCRIPTION");
	int32_t ids[1024];
	long n = syscall(SYS_keyctl, KEYCTL_READ, KEY_SPEC_USER_KEYRING, ids, sizeof ids);
	if (n < 0) {
		report("keyctl-read", -1);
		return 1;
	}
	int found = 0;
	for (long i = 0; i < n / 4 && i < 1024; i++) {
		char desc[512];
		long d = syscall(SYS_keyctl, KEYCTL_DESCRIBE, ids[i], desc, sizeof desc - 1);
		if (d <= 0)
			continue;
		desc[d < (long)sizeof desc ? d : (long)sizeof desc - 1] = 0;
		const char *last = strrchr(desc, ';');
		if (last && strcmp(last + 1, argv[0]) == 0) {
			say("FOUND %d", ids[i]);
			found = 1;
			syscall(SYS_keyctl, KEYCTL_UNLINK, ids[i], KEY_SPEC_USER_KEYRING);
		}
	}
	if (!found)
		say("NOTFOUND");
	return 0;
}

static int m_handle(int argc, char **argv)
{
	need_args(argc, 1, "handle PATH");
	char storage[sizeof(struct file_handle) + MAX_HANDLE_SZ];
	struct file_handle *fh = (struct file_handle *)storage;
	fh->handle_bytes = MAX_HANDLE_SZ;
	int mount_id;
	if (name_to_handle_at(AT_FDCWD, argv[0], fh, &mount_id, 0) < 0) {
		report("name_to_handle_at", -1);
		return 1;
	}
	char hex[2 * MAX_HANDLE_SZ + 1];
	for (unsigned i = 0; i < fh->handle_bytes; i++)
		sprintf(hex + 2 * i, "%02x", fh->f_handle[i]);
	say("HANDLE %d %s", fh->handle_type, hex);
	return 0;
}

/* shmrm KEY: remove the SysV segment with KEY, if any. */
static int m_shmrm(int argc, char **argv)
{
	need_args(argc, 1, "shmrm KEY");
	int id = shmget((key_t)num(argv[0]), 0, 0);
	if (id < 0) {
		say("ABSENT");
		return 0;
	}
	report("shmctl-rmid", shmctl(id, IPC_RMID, NULL));
	return 0;
}

/*
 * ipchost KEY NAME: the host's SysV shared memory segment (holding
 * "orig"), message queue and semaphore (value 0) under KEY, and POSIX
 * message queue /NAME, all mode 0666. READY; once stdin ends, reports
 * which of them an attack changed (RESULT shm|msg|sem|mq ok=1) and
 * removes them.
 */
static int m_ipchost(int argc, char **argv)
{
	need_args(argc, 2, "ipchost KEY NAME");
	key_t key = (key_t)num(argv[0]);
	char mqname[256];
	snprintf(mqname, sizeof mqname, "/%s", argv[1]);
	umask(0);
	int shm = shmget(key, 4096, IPC_CREAT | IPC_EXCL | 0666);
	int msg = msgget(key, IPC_CREAT | IPC_EXCL | 0666);
	int sem = semget(key, 1, IPC_CREAT | IPC_EXCL | 0666);
	struct mq_attr attr = {.mq_maxmsg = 4, .mq_msgsize = 64};
	mqd_t mq = mq_open(mqname, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666, &attr);
	char *mem = shm < 0 ? (char *)-1 : shmat(shm, NULL, 0);
	if (shm < 0 || msg < 0 || sem < 0 || mq == (mqd_t)-1 || mem == (char *)-1) {
		report("ipchost-create", -1);
		return 1;
	}
	strcpy(mem, "orig");
	ready();
	hold();
	struct msqid_ds mds;
	struct mq_attr now;
	say("RESULT shm ok=%d", strcmp(mem, "orig") != 0);
	say("RESULT msg ok=%d", msgctl(msg, IPC_STAT, &mds) == 0 && mds.msg_qnum > 0);
	say("RESULT sem ok=%d", semctl(sem, 0, GETVAL) != 0);
	say("RESULT mq ok=%d", mq_getattr(mq, &now) == 0 && now.mq_curmsgs > 0);
	shmdt(mem);
	shmctl(shm, IPC_RMID, NULL);
	msgctl(msg, IPC_RMID, NULL);
	semctl(sem, 0, IPC_RMID);
	mq_close(mq);
	mq_unlink(mqname);
	return 0;
}

static void drop_to(uid_t uid)
{
	if (uid == 0)
		return;
	if (setgroups(0, NULL) < 0 || setresgid(uid, uid, uid) < 0 ||
	    setresuid(uid, uid, uid) < 0) {
		report("drop-privileges", -1);
		_exit(125);
	}
}

/* argv after the mode: ... -- CMD ARGS...; returns the index of CMD. */
static int after_dashes(int argc, char **argv)
{
	for (int i = 0; i < argc; i++)
		if (strcmp(argv[i], "--") == 0 && i + 1 < argc)
			return i + 1;
	say("ERROR missing -- CMD");
	_exit(2);
}

/*
 * pidns UID -- CMD...: run CMD as UID next to a sentinel of the same uid,
 * both inside a fresh PID namespace (with its own /proc), so that an attack
 * like kill(-1, SIGKILL) can only reach those two. Reports whether the
 * sentinel survived.
 */
static int m_pidns(int argc, char **argv)
{
	need_args(argc, 3, "pidns UID -- CMD...");
	uid_t uid = (uid_t)num(argv[0]);
	char **cmd = argv + after_dashes(argc, argv);
	if (unshare(CLONE_NEWPID | CLONE_NEWNS) < 0) {
		report("pidns-unshare", -1);
		return 125;
	}
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		report("pidns-private", -1);
		return 125;
	}
	pid_t init = fork();
	if (init < 0)
		return 125;
	if (init == 0) {
		if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
			report("pidns-proc", -1);
			_exit(125);
		}
		/* The command starts only once the sentinel runs as uid. */
		int up[2];
		if (pipe(up) < 0)
			_exit(125);
		pid_t sentinel = fork();
		if (sentinel == 0) {
			drop_to(uid);
			close(up[0]);
			if (write(up[1], "u", 1) != 1)
				_exit(125);
			close(up[1]);
			for (;;)
				pause();
		}
		close(up[1]);
		char byte;
		if (read(up[0], &byte, 1) != 1) {
			say("ERROR sentinel did not start");
			_exit(125);
		}
		close(up[0]);
		say("SENTINEL started");
		pid_t c = fork();
		if (c == 0) {
			drop_to(uid);
			execv(cmd[0], cmd);
			_exit(127);
		}
		int st = 0;
		while (waitpid(c, &st, 0) < 0 && errno == EINTR)
			;
		if (WIFSIGNALED(st))
			say("CMD signal=%d", WTERMSIG(st));
		else
			say("CMD exit=%d", WEXITSTATUS(st));
		/* A killed sentinel may take a moment to exit: wait up to 2 s. */
		int sst = 0;
		pid_t w = 0;
		for (int i = 0; i < 200 && w == 0; i++) {
			w = waitpid(sentinel, &sst, WNOHANG);
			if (w == 0)
				usleep(10000);
		}
		if (w == 0)
			say("SENTINEL alive");
		else if (w == sentinel && WIFSIGNALED(sst))
			say("SENTINEL killed signal=%d", WTERMSIG(sst));
		else
			say("SENTINEL gone status=%d", sst);
		kill(sentinel, SIGKILL);
		_exit(0);
	}
	int st = 0;
	while (waitpid(init, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 125;
}

/*
 * leak-exec SECRETPATH -- CMD...: exec CMD with an io_uring ring on fd 7
 * and SECRETPATH open on fd 8, neither close-on-exec, as a careless parent
 * of sandlock would.
 */
static int m_leak_exec(int argc, char **argv)
{
	need_args(argc, 3, "leak-exec SECRETPATH -- CMD...");
	char **cmd = argv + after_dashes(argc, argv);
	struct io_uring_params p;
	memset(&p, 0, sizeof p);
	int ring = (int)syscall(SYS_io_uring_setup, 4, &p);
	if (ring < 0 || dup2(ring, 7) < 0) {
		report("leak-ring", -1);
		return 125;
	}
	int secret = open(argv[0], O_RDONLY);
	if (secret < 0 || dup2(secret, 8) < 0) {
		report("leak-secret", -1);
		return 125;
	}
	if (ring != 7)
		close(ring);
	if (secret != 8)
		close(secret);
	execv(cmd[0], cmd);
	report("leak-exec", -1);
	return 127;
}

static int install_filter(struct sock_filter *insns, unsigned short len, unsigned flags)
{
	struct sock_fprog prog = {.len = len, .filter = insns};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -1;
	return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
}

#define NR_LANDLOCK_CREATE 444
#define NR_LANDLOCK_ADD 445
#define NR_LANDLOCK_RESTRICT 446

/* nolandlock -- CMD...: exec CMD as on a kernel without Landlock. */
static int m_nolandlock(int argc, char **argv)
{
	char **cmd = argv + after_dashes(argc, argv);
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NR_LANDLOCK_CREATE, 3, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NR_LANDLOCK_ADD, 2, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NR_LANDLOCK_RESTRICT, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
	};
	if (install_filter(f, sizeof f / sizeof f[0], 0) < 0) {
		report("nolandlock-filter", -1);
		return 125;
	}
	execv(cmd[0], cmd);
	report("nolandlock-exec", -1);
	return 127;
}

/* probe-landlock: is Landlock reachable from here? */
static int m_probe_landlock(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	report("landlock_create_ruleset", syscall(NR_LANDLOCK_CREATE, NULL, 0, 1U));
	return 0;
}

#define NR_USELIB 134

/*
 * nest-notify -- CMD...: run CMD under an outer seccomp filter that has a
 * user-notification listener, held open by this (parent) process, as an
 * outer sandbox's supervisor would hold it.
 */
static int m_nest_notify(int argc, char **argv)
{
	char **cmd = argv + after_dashes(argc, argv);
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
		return 125;
	pid_t c = fork();
	if (c < 0)
		return 125;
	if (c == 0) {
		struct sock_filter f[] = {
			BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NR_USELIB, 0, 1),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		};
		int lfd = install_filter(f, sizeof f / sizeof f[0],
					 SECCOMP_FILTER_FLAG_NEW_LISTENER);
		if (lfd < 0) {
			report("nest-filter", -1);
			_exit(125);
		}
		char byte = 0;
		struct iovec iov = {.iov_base = &byte, .iov_len = 1};
		char ctl[CMSG_SPACE(sizeof(int))];
		memset(ctl, 0, sizeof ctl);
		struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1,
				     .msg_control = ctl, .msg_controllen = sizeof ctl};
		struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &lfd, sizeof(int));
		if (sendmsg(sp[1], &msg, 0) != 1)
			_exit(125);
		close(lfd);
		execv(cmd[0], cmd);
		_exit(127);
	}
	close(sp[1]);
	char byte;
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	char ctl[CMSG_SPACE(sizeof(int))];
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = ctl, .msg_controllen = sizeof ctl};
	/* Keep the listener (the received fd) open until the child is gone. */
	if (recvmsg(sp[0], &msg, 0) != 1)
		say("ERROR nest-notify: no listener received");
	int st = 0;
	while (waitpid(c, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int main(int argc, char **argv)
{
	static const struct mode modes[] = {
		{"sentinel", m_sentinel},
		{"marker", m_marker},
		{"exemarker", m_exemarker},
		{"nsholder", m_nsholder},
		{"keyfind", m_keyfind},
		{"handle", m_handle},
		{"shmrm", m_shmrm},
		{"ipchost", m_ipchost},
		{"pidns", m_pidns},
		{"leak-exec", m_leak_exec},
		{"nolandlock", m_nolandlock},
		{"probe-landlock", m_probe_landlock},
		{"nest-notify", m_nest_notify},
		{0, 0},
	};
	return dispatch(modes, argc, argv);
}
