/* randloop N [syscall]
 * N calls of getrandom for 32 bytes: the C library's getrandom(), or with
 * `syscall` the system call itself (what a statically linked program
 * makes). The first 8 bytes of the last call are printed on stderr as
 * "last HEX" (so two runs can be compared). */
#include "common.h"
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int raw = argc == 3 && strcmp(argv[2], "syscall") == 0;
	if (argc != 2 && !raw) {
		fprintf(stderr, "usage: randloop N [syscall]\n");
		return 2;
	}
	long n = parse_count(argv[1], "N");
	unsigned char buf[32];
	long long t0 = now_ns();
	for (long i = 0; i < n; i++) {
		ssize_t got = raw ? syscall(SYS_getrandom, buf, sizeof buf, 0)
				  : getrandom(buf, sizeof buf, 0);
		if (got != (ssize_t)sizeof buf) {
			fprintf(stderr, "error: getrandom (iteration %ld): %s\n", i, strerror(errno));
			return 1;
		}
	}
	long long t1 = now_ns();
	fprintf(stderr, "last ");
	for (int i = 0; i < 8; i++)
		fprintf(stderr, "%02x", buf[i]);
	fprintf(stderr, "\n");
	report(n, t0, t1);
	return 0;
}
