/* forkloop N
 * N sequential fork + waitpid; each child exits at once with status 0. */
#include "common.h"
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: forkloop N\n");
		return 2;
	}
	long n = parse_count(argv[1], "N");
	long long t0 = now_ns();
	for (long i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid < 0) {
			fprintf(stderr, "error: fork (iteration %ld): %s\n", i, strerror(errno));
			return 1;
		}
		if (pid == 0)
			_exit(0);
		int status = 0;
		if (waitpid(pid, &status, 0) != pid) {
			fprintf(stderr, "error: waitpid (iteration %ld): %s\n", i, strerror(errno));
			return 1;
		}
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "error: child %ld ended with status 0x%x\n", i, status);
			return 1;
		}
	}
	long long t1 = now_ns();
	report(n, t0, t1);
	return 0;
}
