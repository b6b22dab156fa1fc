/*
 * Shared protocol of the escape-suite programs (see ../escape.rs).
 *
 * Every program is called as   PROG TAG MODE [ARGS...]
 *   TAG   a unique word the runner uses to find the program's processes
 *         (it is always argv[1], so the runner matches /proc/PID/cmdline);
 *   MODE  which attack (or helper) to run.
 *
 * Output is line-based on stdout, one write(2) per line so that lines from
 * several processes never interleave:
 *   READY                       the program started (and is confined, if run
 *                               under sandlock); it then usually waits for
 *   go [WORDS...]               a line from the runner on stdin;
 *   RESULT <what> ok=<value>    a call returned <value>;
 *   RESULT <what> errno=<n>     a call failed with errno <n>;
 *   other words                 mode-specific facts (DATA, FD, ...).
 *   HOLD                        the attack is over; the program now waits
 *                               for EOF on stdin, so that the runner can
 *                               inspect /proc/PID/... while the effect (if
 *                               any) is still alive.
 *
 * The runner never trusts these lines to decide that an attack failed: it
 * checks the side effect itself. They are there to make failures readable.
 */
#ifndef ESCAPE_COMMON_H
#define ESCAPE_COMMON_H

#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define UNUSED __attribute__((unused))

static const char *g_tag UNUSED = "?";

/* One line on stdout in one write(2). */
__attribute__((format(printf, 1, 2))) UNUSED static void say(const char *fmt, ...)
{
	char buf[8192];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof buf - 2)
		n = sizeof buf - 2;
	buf[n++] = '\n';
	ssize_t off = 0;
	while (off < n) {
		ssize_t w = write(1, buf + off, n - off);
		if (w <= 0) {
			if (w < 0 && errno == EINTR)
				continue;
			return;
		}
		off += w;
	}
}

/* Report the outcome of a libc-style call (-1 and errno on failure). */
UNUSED static void report(const char *what, long r)
{
	if (r == -1)
		say("RESULT %s errno=%d", what, errno);
	else
		say("RESULT %s ok=%ld", what, r);
}

/* Report the outcome of a raw kernel return value (-4095..-1 is -errno). */
UNUSED static void report_raw(const char *what, long r)
{
	if (r < 0 && r > -4096)
		say("RESULT %s errno=%ld", what, -r);
	else
		say("RESULT %s ok=%ld", what, r);
}

UNUSED static void ready(void) { say("READY"); }

/*
 * Wait for the runner's "go" line; returns what follows "go" (maybe "").
 * Exits with 3 on EOF, so a runner that died does not leave us running.
 */
UNUSED static char *wait_go(void)
{
	static char line[4096];
	size_t n = 0;
	for (;;) {
		char c;
		ssize_t r = read(0, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			_exit(3);
		if (c == '\n')
			break;
		if (n < sizeof line - 1)
			line[n++] = c;
	}
	line[n] = 0;
	if (strncmp(line, "go", 2) != 0)
		_exit(4);
	char *rest = line + 2;
	while (*rest == ' ')
		rest++;
	return rest;
}

/*
 * Say HOLD (the attack is over, its effects are alive), then block until
 * the runner closes our stdin (or it is otherwise at EOF).
 */
UNUSED static void hold(void)
{
	say("HOLD");
	char buf[256];
	for (;;) {
		ssize_t r = read(0, buf, sizeof buf);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return;
	}
}

/* Parse a decimal or 0x-prefixed number, dying loudly on garbage. */
UNUSED static long num(const char *s)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 0);
	if (errno || *s == 0 || *end != 0) {
		say("ERROR bad number '%s'", s);
		_exit(2);
	}
	return v;
}

/* Nth space-separated word of s (0-based), copied into a static buffer. */
UNUSED static const char *word(const char *s, int idx)
{
	static char out[4][1024];
	static int slot;
	char *dst = out[slot++ & 3];
	for (int i = 0;; i++) {
		while (*s == ' ')
			s++;
		const char *start = s;
		while (*s && *s != ' ')
			s++;
		if (i == idx) {
			size_t len = (size_t)(s - start);
			if (len >= sizeof out[0])
				len = sizeof out[0] - 1;
			memcpy(dst, start, len);
			dst[len] = 0;
			return dst;
		}
		if (!*s) {
			say("ERROR missing word %d in go line", idx);
			_exit(2);
		}
	}
}

UNUSED static void need_args(int argc, int n, const char *usage)
{
	if (argc < n) {
		say("ERROR usage: %s", usage);
		_exit(2);
	}
}

struct mode {
	const char *name;
	int (*run)(int argc, char **argv);
};

/* Dispatch argv[2] to the matching mode, passing the words after it. */
UNUSED static int dispatch(const struct mode *modes, int argc, char **argv)
{
	if (argc < 3) {
		say("ERROR usage: %s TAG MODE [ARGS...]", argv[0]);
		return 2;
	}
	g_tag = argv[1];
	for (const struct mode *m = modes; m->name; m++)
		if (strcmp(m->name, argv[2]) == 0)
			return m->run(argc - 3, argv + 3);
	say("ERROR unknown mode %s", argv[2]);
	return 2;
}

#endif
