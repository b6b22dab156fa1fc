/* openloop N FILE [--probe-denied PATH]
 * N times open(FILE, O_RDONLY|O_CLOEXEC) + close. With --probe-denied, first
 * checks that PATH cannot be opened (the sandbox's deny rule is in force) and
 * fails if it can. */
#include "common.h"
#include <fcntl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 3 && argc != 5) {
		fprintf(stderr, "usage: openloop N FILE [--probe-denied PATH]\n");
		return 2;
	}
	long n = parse_count(argv[1], "N");
	const char *file = argv[2];
	if (argc == 5) {
		if (strcmp(argv[3], "--probe-denied") != 0) {
			fprintf(stderr, "error: unknown option '%s'\n", argv[3]);
			return 2;
		}
		int fd = open(argv[4], O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			fprintf(stderr, "error: %s opened although it should be denied\n", argv[4]);
			return 3;
		}
	}
	long long t0 = now_ns();
	for (long i = 0; i < n; i++) {
		int fd = open(file, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			fprintf(stderr, "error: open %s (iteration %ld): %s\n", file, i, strerror(errno));
			return 1;
		}
		close(fd);
	}
	long long t1 = now_ns();
	report(n, t0, t1);
	return 0;
}
