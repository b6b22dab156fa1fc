/* The reference: a minimal C seccomp-notify supervisor, for the round-trip
 * bench (benches/benches/notify.rs compiles it with gcc).
 *
 * usage: notify_ref ITERS SYNC PIN [ADDFD]
 * A child under a filter that notifies getppid calls it ITERS times; the
 * parent answers CONTINUE in a blocking NOTIF_RECV loop. SYNC turns on
 * SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP; PIN puts both on CPU 0. With ADDFD
 * set to 1 the parent answers each call instead as an intercepted open is
 * answered: NOTIF_ADDFD with SECCOMP_ADDFD_FLAG_SEND of a descriptor of
 * /dev/null, which the call returns and the child closes. Prints the
 * child's elapsed nanoseconds for the loop.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP 1
#endif
#ifndef SECCOMP_ADDFD_FLAG_SEND
#define SECCOMP_ADDFD_FLAG_SEND (1UL << 1)
#endif

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc != 4 && argc != 5) return 2;
    long iters = atol(argv[1]);
    int sync = atoi(argv[2]), pin = atoi(argv[3]);
    int addfd = argc == 5 && atoi(argv[4]);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) return 3;
    if (pin) {
        cpu_set_t s;
        CPU_ZERO(&s);
        CPU_SET(0, &s);
        sched_setaffinity(0, sizeof s, &s);
    }
    pid_t pid = fork();
    if (pid == 0) {
        struct sock_filter f[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog prog = {4, f};
        prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        int fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
        char b = 0;
        struct iovec io = {&b, 1};
        char cbuf[CMSG_SPACE(sizeof(int))];
        struct msghdr m = {0};
        m.msg_iov = &io;
        m.msg_iovlen = 1;
        m.msg_control = cbuf;
        m.msg_controllen = sizeof cbuf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof fd);
        sendmsg(sv[1], &m, 0);
        close(fd);
        read(sv[1], &b, 1);
        long long t0 = now_ns();
        if (addfd) {
            for (long i = 0; i < iters; i++) {
                long got = syscall(SYS_getppid);
                if (got < 0) _exit(6);
                close((int)got);
            }
        } else {
            for (long i = 0; i < iters; i++) syscall(SYS_getppid);
        }
        long long t1 = now_ns();
        printf("%lld\n", t1 - t0);
        fflush(stdout);
        _exit(0);
    }
    char b;
    struct iovec io = {&b, 1};
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct msghdr m = {0};
    m.msg_iov = &io;
    m.msg_iovlen = 1;
    m.msg_control = cbuf;
    m.msg_controllen = sizeof cbuf;
    if (recvmsg(sv[0], &m, 0) < 0) return 4;
    int fd;
    memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof fd);
    if (sync && ioctl(fd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP, 0)) return 5;
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull < 0) return 6;
    write(sv[0], &b, 1);
    struct seccomp_notif req;
    struct seccomp_notif_resp resp;
    for (;;) {
        memset(&req, 0, sizeof req);
        if (ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, &req)) break; /* ENOENT: the child is gone */
        if (addfd) {
            struct seccomp_notif_addfd a = {0};
            a.id = req.id;
            a.flags = SECCOMP_ADDFD_FLAG_SEND;
            a.srcfd = devnull;
            a.newfd_flags = O_CLOEXEC;
            ioctl(fd, SECCOMP_IOCTL_NOTIF_ADDFD, &a);
            continue;
        }
        resp.id = req.id;
        resp.val = 0;
        resp.error = 0;
        resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
        ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, &resp);
    }
    waitpid(pid, 0, 0);
    return 0;
}
