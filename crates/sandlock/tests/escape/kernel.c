/*
 * Attack class 2: namespaces, mounts and the kernel's wider surface.
 *
 * Each mode makes one attempt and then HOLDs (waits for EOF on stdin), so
 * the runner can look at what the attempt left behind: namespace links,
 * mount tables, file descriptors, keys, accepted connections.
 *
 * `priv CALL` runs calls that must never succeed on the test machine (kexec,
 * module loading, reboot, swap, clock setting) with arguments the kernel
 * rejects only AFTER its permission check: bare root gets that later errno
 * (proof that the call got past the permission check), a sandbox must
 * answer before the kernel does. Nothing they do can change the machine.
 */
#include "common.h"

#include <arpa/inet.h>
#include <linux/bpf.h>
#include <linux/io_uring.h>
#include <linux/keyctl.h>
#include <linux/mount.h>
#include <linux/perf_event.h>
#include <linux/userfaultfd.h>
#include <mqueue.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/personality.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timex.h>
#include <time.h>

#define ALL_NS (CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | \
		CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWCGROUP)
#define NR_PIDFD_OPEN 434
#define NR_OPEN_TREE 428
#define NR_MOVE_MOUNT 429
#define NR_FSOPEN 430
#define NR_FSCONFIG 431
#define NR_FSMOUNT 432
#define DETACH 2 /* MNT_DETACH */

static int a_unshare(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	ready();
	wait_go();
	report("unshare", unshare(ALL_NS));
	hold();
	return 0;
}

/* go PID: join PID's user namespace through /proc/PID/ns/user. */
static int a_setns_proc(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	ready();
	long pid = num(word(wait_go(), 0));
	char path[64];
	snprintf(path, sizeof path, "/proc/%ld/ns/user", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	report("setns-open", fd);
	if (fd >= 0)
		report("setns", setns(fd, CLONE_NEWUSER));
	hold();
	return 0;
}

/* go PID: join PID's user and UTS namespaces through a pidfd. */
static int a_setns_pidfd(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	ready();
	long pid = num(word(wait_go(), 0));
	long fd = syscall(NR_PIDFD_OPEN, pid, 0);
	report("pidfd_open", fd);
	if (fd >= 0)
		report("setns", setns((int)fd, CLONE_NEWUSER | CLONE_NEWUTS));
	hold();
	return 0;
}

/* mount DIR: a tmpfs on DIR with mount(2). */
static int a_mount(int argc, char **argv)
{
	need_args(argc, 1, "mount DIR");
	ready();
	wait_go();
	long r = syscall(SYS_mount, "escape", argv[0], "tmpfs", 0L, "size=64k");
	report("mount", r);
	hold();
	if (r == 0)
		syscall(SYS_umount2, argv[0], DETACH);
	return 0;
}

/* fsmount DIR: a tmpfs on DIR with fsopen/fsconfig/fsmount/move_mount. */
static int a_fsmount(int argc, char **argv)
{
	need_args(argc, 1, "fsmount DIR");
	ready();
	wait_go();
	long r = -1;
	long fs = syscall(NR_FSOPEN, "tmpfs", FSOPEN_CLOEXEC);
	report("fsopen", fs);
	if (fs >= 0) {
		report("fsconfig", syscall(NR_FSCONFIG, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0));
		long m = syscall(NR_FSMOUNT, fs, FSMOUNT_CLOEXEC, 0);
		report("fsmount", m);
		if (m >= 0) {
			r = syscall(NR_MOVE_MOUNT, m, "", AT_FDCWD, argv[0], MOVE_MOUNT_F_EMPTY_PATH);
			report("move_mount", r);
		}
	}
	hold();
	if (r == 0)
		syscall(SYS_umount2, argv[0], DETACH);
	return 0;
}

/* open-tree SRC DIR: clone the mount at SRC and attach it on DIR. */
static int a_open_tree(int argc, char **argv)
{
	need_args(argc, 2, "open-tree SRC DIR");
	ready();
	wait_go();
	long r = -1;
	long t = syscall(NR_OPEN_TREE, AT_FDCWD, argv[0], OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	report("open_tree", t);
	if (t >= 0) {
		r = syscall(NR_MOVE_MOUNT, t, "", AT_FDCWD, argv[1], MOVE_MOUNT_F_EMPTY_PATH);
		report("move_mount", r);
	}
	hold();
	if (r == 0)
		syscall(SYS_umount2, argv[1], DETACH);
	return 0;
}

static int a_bpf(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	union bpf_attr attr;
	memset(&attr, 0, sizeof attr);
	attr.map_type = BPF_MAP_TYPE_ARRAY;
	attr.key_size = 4;
	attr.value_size = 4;
	attr.max_entries = 1;
	ready();
	wait_go();
	report("bpf", syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr));
	hold();
	return 0;
}

static int a_perf(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	struct perf_event_attr pa;
	memset(&pa, 0, sizeof pa);
	pa.size = sizeof pa;
	pa.type = PERF_TYPE_SOFTWARE;
	pa.config = PERF_COUNT_SW_CPU_CLOCK;
	pa.exclude_kernel = 1;
	pa.exclude_hv = 1;
	ready();
	wait_go();
	report("perf_event_open", syscall(SYS_perf_event_open, &pa, 0, -1, -1, 0));
	hold();
	return 0;
}

static int a_userfaultfd(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	ready();
	wait_go();
	report("userfaultfd", syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY));
	hold();
	return 0;
}

/* keyctl DESC: a key in the user keyring, which outlives the process. */
static int a_keyctl(int argc, char **argv)
{
	need_args(argc, 1, "keyctl DESCRIPTION");
	ready();
	wait_go();
	report("add_key", syscall(SYS_add_key, "user", argv[0], "escape", 6, KEY_SPEC_USER_KEYRING));
	hold();
	return 0;
}

/* One IORING_OP_CONNECT through a fresh ring; returns the CQE result. */
static long uring_connect(const struct sockaddr_in *sa)
{
	struct io_uring_params p;
	memset(&p, 0, sizeof p);
	int ring = (int)syscall(SYS_io_uring_setup, 4, &p);
	report("io_uring_setup", ring);
	if (ring < 0)
		return -errno;
	size_t sq_sz = p.sq_off.array + p.sq_entries * sizeof(unsigned);
	size_t cq_sz = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	int single = (p.features & IORING_FEAT_SINGLE_MMAP) != 0;
	if (single && cq_sz > sq_sz)
		sq_sz = cq_sz;
	char *sq = mmap(NULL, sq_sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
			ring, IORING_OFF_SQ_RING);
	char *cq = single ? sq
			  : mmap(NULL, cq_sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
				 ring, IORING_OFF_CQ_RING);
	struct io_uring_sqe *sqes = mmap(NULL, p.sq_entries * sizeof *sqes, PROT_READ | PROT_WRITE,
					 MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_SQES);
	if (sq == MAP_FAILED || cq == MAP_FAILED || sqes == MAP_FAILED)
		return -ENOMEM;
	int sock = socket(AF_INET, SOCK_STREAM, 0);
	report("socket", sock);
	unsigned *tail = (unsigned *)(sq + p.sq_off.tail);
	unsigned mask = *(unsigned *)(sq + p.sq_off.ring_mask);
	unsigned *array = (unsigned *)(sq + p.sq_off.array);
	unsigned t = *tail, idx = t & mask;
	memset(&sqes[idx], 0, sizeof sqes[idx]);
	sqes[idx].opcode = IORING_OP_CONNECT;
	sqes[idx].fd = sock;
	sqes[idx].addr = (uint64_t)(uintptr_t)sa;
	sqes[idx].off = sizeof *sa;
	sqes[idx].user_data = 1;
	array[idx] = idx;
	__atomic_store_n(tail, t + 1, __ATOMIC_RELEASE);
	long e = syscall(SYS_io_uring_enter, ring, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0);
	report("io_uring_enter", e);
	if (e < 0)
		return -errno;
	unsigned head = __atomic_load_n((unsigned *)(cq + p.cq_off.head), __ATOMIC_ACQUIRE);
	unsigned cmask = *(unsigned *)(cq + p.cq_off.ring_mask);
	struct io_uring_cqe *cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
	return cqes[head & cmask].res;
}

/* uring-connect IP PORT: connect(2) without the connect syscall. */
static int a_uring_connect(int argc, char **argv)
{
	need_args(argc, 2, "uring-connect IP PORT");
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)num(argv[1]));
	inet_pton(AF_INET, argv[0], &sa.sin_addr);
	ready();
	wait_go();
	report_raw("uring-connect", uring_connect(&sa));
	hold();
	return 0;
}

/* fd-scan: list (and read from) every open fd above 2. */
static int a_fd_scan(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	ready();
	wait_go();
	int count = 0;
	for (int fd = 3; fd < 4096; fd++) {
		if (fcntl(fd, F_GETFD) < 0)
			continue;
		count++;
		struct stat st;
		fstat(fd, &st);
		say("FD %d mode=0%o", fd, st.st_mode);
		if (S_ISREG(st.st_mode)) {
			char buf[128];
			ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
			if (n > 0) {
				buf[n] = 0;
				for (ssize_t i = 0; i < n; i++)
					if (buf[i] < 0x21 || buf[i] > 0x7e)
						buf[i] = '.';
				say("DATA %d %s", fd, buf);
			}
		}
	}
	report("fd-scan", count);
	hold();
	return 0;
}

static int unhex(char c)
{
	return c >= 'a' ? c - 'a' + 10 : c - '0';
}

/* open-by-handle MOUNTDIR, go TYPE HEX: open a file by its handle. */
static int a_open_by_handle(int argc, char **argv)
{
	need_args(argc, 1, "open-by-handle MOUNTDIR");
	ready();
	const char *go = wait_go();
	int type = (int)num(word(go, 0));
	const char *hex = word(go, 1);
	char storage[sizeof(struct file_handle) + MAX_HANDLE_SZ];
	struct file_handle *fh = (struct file_handle *)storage;
	size_t n = strlen(hex) / 2;
	if (n > MAX_HANDLE_SZ)
		return 2;
	fh->handle_bytes = (unsigned)n;
	fh->handle_type = type;
	for (size_t i = 0; i < n; i++)
		fh->f_handle[i] = (unsigned char)(unhex(hex[2 * i]) << 4 | unhex(hex[2 * i + 1]));
	int mfd = open(argv[0], O_RDONLY | O_DIRECTORY);
	report("open-mountdir", mfd);
	int fd = open_by_handle_at(mfd, fh, O_RDONLY);
	report("open_by_handle_at", fd);
	if (fd >= 0) {
		char buf[128];
		ssize_t r = read(fd, buf, sizeof buf - 1);
		if (r > 0) {
			buf[r] = 0;
			say("DATA %s", buf);
		}
	}
	hold();
	return 0;
}

/* personality: turn on READ_IMPLIES_EXEC, which the deny list forbids. */
static int a_personality(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	ready();
	wait_go();
	int cur = personality(0xffffffff);
	report("personality", personality((unsigned long)cur | READ_IMPLIES_EXEC));
	hold();
	return 0;
}

/* priv CALL [PATH]: see the header comment. PATH must not exist. */
static int a_priv(int argc, char **argv)
{
	need_args(argc, 1, "priv CALL [PATH]");
	const char *call = argv[0];
	const char *path = argc > 1 ? argv[1] : "/nonexistent-sandlock-escape";
	struct timex tx;
	memset(&tx, 0, sizeof tx);
	tx.modes = ADJ_TICK;
	tx.tick = 0; /* invalid: checked after CAP_SYS_TIME */
	struct timespec bad = {.tv_sec = 0, .tv_nsec = -1};
	ready();
	wait_go();
	long r;
	if (!strcmp(call, "kexec_load"))
		r = syscall(SYS_kexec_load, 0L, 17L /* > KEXEC_SEGMENT_MAX */, NULL, 0L);
	else if (!strcmp(call, "kexec_file_load"))
		r = syscall(SYS_kexec_file_load, -1L, -1L, 0L, NULL, 0x100L /* unknown flag */);
	else if (!strcmp(call, "init_module"))
		r = syscall(SYS_init_module, NULL, 0L /* shorter than an ELF header */, "");
	else if (!strcmp(call, "finit_module"))
		r = syscall(SYS_finit_module, -1L, "", 0L);
	else if (!strcmp(call, "delete_module"))
		r = syscall(SYS_delete_module, "sandlock_escape_no_such_module", (long)O_NONBLOCK);
	else if (!strcmp(call, "reboot"))
		r = syscall(SYS_reboot, 0L /* wrong magic */, 0L, 0L, NULL);
	else if (!strcmp(call, "swapon"))
		r = syscall(SYS_swapon, path, 0L);
	else if (!strcmp(call, "swapoff"))
		r = syscall(SYS_swapoff, path);
	else if (!strcmp(call, "acct"))
		r = syscall(SYS_acct, path);
	else if (!strcmp(call, "settimeofday"))
		r = syscall(SYS_settimeofday, NULL, NULL); /* changes nothing */
	else if (!strcmp(call, "clock_settime"))
		r = syscall(SYS_clock_settime, CLOCK_REALTIME, &bad);
	else if (!strcmp(call, "adjtimex"))
		r = syscall(SYS_adjtimex, &tx);
	else if (!strcmp(call, "clock_adjtime"))
		r = syscall(SYS_clock_adjtime, CLOCK_REALTIME, &tx);
	else {
		say("ERROR unknown call %s", call);
		return 2;
	}
	report(call, r);
	return 0;
}

/*
 * ipc KEY NAME: reach the host's SysV objects under KEY and its POSIX
 * message queue /NAME (made by helpers' ipchost): write into the shared
 * memory, send a message, raise the semaphore, send to the queue.
 */
static int a_ipc(int argc, char **argv)
{
	need_args(argc, 2, "ipc KEY NAME");
	key_t key = (key_t)num(argv[0]);
	char mqname[256];
	snprintf(mqname, sizeof mqname, "/%s", argv[1]);
	ready();
	wait_go();
	int shm = shmget(key, 0, 0);
	report("shmget", shm);
	if (shm >= 0) {
		char *mem = shmat(shm, NULL, 0);
		report("shmat", mem == (char *)-1 ? -1 : 0);
		if (mem != (char *)-1)
			strcpy(mem, "pwned");
	}
	int msg = msgget(key, 0);
	report("msgget", msg);
	if (msg >= 0) {
		struct {
			long type;
			char text[8];
		} m = {1, "pwned"};
		report("msgsnd", msgsnd(msg, &m, sizeof m.text, IPC_NOWAIT));
	}
	int sem = semget(key, 0, 0);
	report("semget", sem);
	if (sem >= 0) {
		struct sembuf op = {.sem_num = 0, .sem_op = 1, .sem_flg = 0};
		report("semop", semop(sem, &op, 1));
	}
	mqd_t mq = mq_open(mqname, O_WRONLY | O_CLOEXEC);
	report("mq_open", mq == (mqd_t)-1 ? -1 : 0);
	if (mq != (mqd_t)-1)
		report("mq_send", mq_send(mq, "pwned", 5, 0));
	return 0;
}

int main(int argc, char **argv)
{
	static const struct mode modes[] = {
		{"unshare", a_unshare},
		{"setns-proc", a_setns_proc},
		{"setns-pidfd", a_setns_pidfd},
		{"mount", a_mount},
		{"fsmount", a_fsmount},
		{"open-tree", a_open_tree},
		{"bpf", a_bpf},
		{"perf", a_perf},
		{"userfaultfd", a_userfaultfd},
		{"keyctl", a_keyctl},
		{"uring-connect", a_uring_connect},
		{"fd-scan", a_fd_scan},
		{"open-by-handle", a_open_by_handle},
		{"personality", a_personality},
		{"priv", a_priv},
		{"ipc", a_ipc},
		{0, 0},
	};
	return dispatch(modes, argc, argv);
}
