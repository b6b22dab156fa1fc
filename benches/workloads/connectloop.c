/* connectloop N IPV4 PORT
 * N times: socket(AF_INET, SOCK_STREAM) + connect to IPV4:PORT + close.
 * The harness runs the listener. Each socket is closed with a reset
 * (SO_LINGER 0): a normal close would leave it in TIME_WAIT for a minute,
 * and the ephemeral ports of thousands of those (rounds after rounds) make
 * the kernel's port search, not the connect, what the loop measures. */
#include "common.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: connectloop N IPV4 PORT\n");
		return 2;
	}
	long n = parse_count(argv[1], "N");
	long port = parse_count(argv[3], "PORT");
	struct sockaddr_in addr;
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_port = htons((unsigned short)port);
	if (port > 65535 || inet_pton(AF_INET, argv[2], &addr.sin_addr) != 1) {
		fprintf(stderr, "error: bad address %s:%s\n", argv[2], argv[3]);
		return 2;
	}
	long long t0 = now_ns();
	for (long i = 0; i < n; i++) {
		int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (s < 0) {
			fprintf(stderr, "error: socket (iteration %ld): %s\n", i, strerror(errno));
			return 1;
		}
		if (connect(s, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
			fprintf(stderr, "error: connect %s:%ld (iteration %ld): %s\n", argv[2], port, i,
				strerror(errno));
			return 1;
		}
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };
		if (setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) != 0) {
			fprintf(stderr, "error: SO_LINGER (iteration %ld): %s\n", i, strerror(errno));
			return 1;
		}
		close(s);
	}
	long long t1 = now_ns();
	report(n, t0, t1);
	return 0;
}
