/* clockloop N [syscall]
 * N reads of CLOCK_REALTIME: through the C library (the vDSO, in user
 * space), or with `syscall`, as the system call itself. The last reading
 * is printed on stderr as "year Y" (so a run can check the clock shift). */
#include "common.h"
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 2 && !(argc == 3 && strcmp(argv[2], "syscall") == 0)) {
		fprintf(stderr, "usage: clockloop N [syscall]\n");
		return 2;
	}
	long n = parse_count(argv[1], "N");
	int sys = argc == 3;
	struct timespec ts = {0, 0};
	long long t0 = now_ns();
	for (long i = 0; i < n; i++) {
		int r = sys ? (int)syscall(SYS_clock_gettime, CLOCK_REALTIME, &ts)
			    : clock_gettime(CLOCK_REALTIME, &ts);
		if (r != 0) {
			fprintf(stderr, "error: clock_gettime (iteration %ld): %s\n", i, strerror(errno));
			return 1;
		}
	}
	long long t1 = now_ns();
	fprintf(stderr, "year %ld\n", 1970 + (long)(ts.tv_sec / 31556952));
	report(n, t0, t1);
	return 0;
}
