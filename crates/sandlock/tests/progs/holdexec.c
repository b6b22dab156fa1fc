/*
 * holdexec SECS PROGRAM [ARGS...]: runs PROGRAM under ptrace, following
 * every process it forks, and holds the first execve that a process other
 * than PROGRAM itself makes at its system call entry, never letting it go
 * on: an execve that hangs, as on a hung network file system. Prints
 * "HELD" when it holds one and "EXIT N" (N: PROGRAM's exit status, or
 * 128 + its signal) when PROGRAM ends, and exits with N. After SECS
 * seconds it gives up (SIGALRM ends it; PTRACE_O_EXITKILL then kills
 * every process it traces).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: holdexec SECS PROGRAM [ARGS...]\n");
		return 2;
	}
	alarm((unsigned)atoi(argv[1]));
	pid_t child = fork();
	if (child < 0)
		return 2;
	if (child == 0) {
		ptrace(PTRACE_TRACEME, 0, 0, 0);
		raise(SIGSTOP);
		execv(argv[2], argv + 2);
		_exit(127);
	}
	int st;
	if (waitpid(child, &st, 0) != child || !WIFSTOPPED(st))
		return 2;
	long opts = PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK |
		    PTRACE_O_TRACECLONE | PTRACE_O_EXITKILL;
	if (ptrace(PTRACE_SETOPTIONS, child, 0, opts) < 0) {
		perror("holdexec: PTRACE_SETOPTIONS");
		return 2;
	}
	ptrace(PTRACE_SYSCALL, child, 0, 0);
	int program_execed = 0;
	pid_t held = 0;
	for (;;) {
		pid_t p = waitpid(-1, &st, __WALL);
		if (p < 0) {
			if (errno == EINTR)
				continue;
			return 2;
		}
		if (WIFEXITED(st) || WIFSIGNALED(st)) {
			if (p == child) {
				int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
				printf("EXIT %d\n", code);
				fflush(stdout);
				return code;
			}
			continue;
		}
		if (!WIFSTOPPED(st))
			continue;
		int sig = WSTOPSIG(st), deliver = 0;
		if (sig == (SIGTRAP | 0x80)) {
			struct user_regs_struct r;
			ptrace(PTRACE_GETREGS, p, 0, &r);
			/* At a system call's entry rax holds -ENOSYS. */
			if (r.orig_rax == SYS_execve && r.rax == (unsigned long long)-ENOSYS) {
				if (p == child && !program_execed) {
					program_execed = 1;
				} else if (!held) {
					held = p;
					printf("HELD\n");
					fflush(stdout);
					continue;
				}
			}
		} else if (sig == SIGSTOP || sig == SIGTRAP) {
			/* A new process's first stop, or a fork event. */
		} else {
			deliver = sig;
		}
		ptrace(PTRACE_SYSCALL, p, 0, deliver);
	}
}
