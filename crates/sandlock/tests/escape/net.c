/*
 * Attack class 6: the network rules.
 *
 * Each mode tries to reach a listener the runner started (on 127.0.0.x,
 * ::1, a unix socket path or an abstract name) by a spelling or a protocol
 * the policy might not expect. The runner counts what its listeners saw.
 */
#include "common.h"

#include <arpa/inet.h>
#include <stddef.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <sys/socket.h>
#include <sys/un.h>

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif
#ifndef MSG_FASTOPEN
#define MSG_FASTOPEN 0x20000000
#endif

/* Fill SA from "inet"/"inet6", ADDR, PORT; returns its length. */
static socklen_t addr_of(struct sockaddr_storage *sa, const char *family, const char *addr,
			 const char *port)
{
	memset(sa, 0, sizeof *sa);
	if (strcmp(family, "inet6") == 0) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)sa;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)num(port));
		if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1)
			return sizeof *s6;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)sa;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)num(port));
		if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1)
			return sizeof *s4;
	}
	say("ERROR bad address %s %s", family, addr);
	_exit(2);
}

/* tcp inet|inet6 ADDR PORT tcp|mptcp: one stream connect. */
static int a_tcp(int argc, char **argv)
{
	need_args(argc, 4, "tcp FAMILY ADDR PORT tcp|mptcp");
	struct sockaddr_storage sa;
	socklen_t len = addr_of(&sa, argv[0], argv[1], argv[2]);
	int proto = strcmp(argv[3], "mptcp") == 0 ? IPPROTO_MPTCP : 0;
	ready();
	wait_go();
	int fd = socket(sa.ss_family, SOCK_STREAM, proto);
	report("socket", fd);
	report("connect", connect(fd, (struct sockaddr *)&sa, len));
	hold();
	return 0;
}

/* fastopen IP PORT: connect implicitly with sendto/sendmsg(MSG_FASTOPEN). */
static int a_fastopen(int argc, char **argv)
{
	need_args(argc, 2, "fastopen IP PORT");
	struct sockaddr_storage sa;
	socklen_t len = addr_of(&sa, "inet", argv[0], argv[1]);
	ready();
	wait_go();
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	report("sendto-fastopen", sendto(fd, "hello", 5, MSG_FASTOPEN, (struct sockaddr *)&sa, len));
	int fd2 = socket(AF_INET, SOCK_STREAM, 0);
	struct iovec iov = {.iov_base = "hello", .iov_len = 5};
	struct msghdr m = {.msg_name = &sa, .msg_namelen = len, .msg_iov = &iov, .msg_iovlen = 1};
	report("sendmsg-fastopen", sendmsg(fd2, &m, MSG_FASTOPEN));
	hold();
	return 0;
}

/* udp inet|inet6 ADDR PORT: three datagrams. */
static int a_udp(int argc, char **argv)
{
	need_args(argc, 3, "udp FAMILY ADDR PORT");
	struct sockaddr_storage sa;
	socklen_t len = addr_of(&sa, argv[0], argv[1], argv[2]);
	ready();
	wait_go();
	int fd = socket(sa.ss_family, SOCK_DGRAM, 0);
	report("socket", fd);
	for (int i = 0; i < 3; i++)
		report("sendto", sendto(fd, "udp", 3, 0, (struct sockaddr *)&sa, len));
	return 0;
}

/*
 * keyguess IP PORT: UDP datagrams to IP by raw sendmsg, the three argument
 * registers sendmsg does not use set to values a guess at sandlock's
 * listener hand-over key would try (zeros, all ones, small numbers, the
 * datagram's own pointers). The hand-over is the one sendmsg the filter
 * lets through unexamined; none of these may pass for it.
 */
static int a_keyguess(int argc, char **argv)
{
	need_args(argc, 2, "keyguess IP PORT");
	struct sockaddr_storage sa;
	socklen_t len = addr_of(&sa, "inet", argv[0], argv[1]);
	ready();
	wait_go();
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	report("socket", fd);
	struct iovec iov = {.iov_base = "key", .iov_len = 3};
	struct msghdr m = {.msg_name = &sa, .msg_namelen = len, .msg_iov = &iov, .msg_iovlen = 1};
	const unsigned long guesses[][3] = {
		{0, 0, 0},
		{~0UL, ~0UL, ~0UL},
		{1, 2, 3},
		{(unsigned long)&m, (unsigned long)&iov, (unsigned long)&sa},
		{0, ~0UL, 0},
	};
	for (size_t i = 0; i < sizeof guesses / sizeof guesses[0]; i++)
		report("sendmsg-keyguess", syscall(SYS_sendmsg, fd, &m, 0, guesses[i][0], guesses[i][1], guesses[i][2]));
	return 0;
}

static uint16_t checksum(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t sum = 0;
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

/* icmp IP NONCE: an echo request carrying NONCE, by ping socket then raw. */
static int a_icmp(int argc, char **argv)
{
	need_args(argc, 2, "icmp IP NONCE");
	struct sockaddr_storage sa;
	socklen_t len = addr_of(&sa, "inet", argv[0], "0");
	char pkt[256];
	memset(pkt, 0, sizeof pkt);
	struct icmphdr *h = (struct icmphdr *)pkt;
	h->type = ICMP_ECHO;
	h->un.echo.id = htons(0x5e5e);
	h->un.echo.sequence = htons(1);
	size_t n = sizeof *h + strlen(argv[1]);
	if (n > sizeof pkt)
		return 2;
	memcpy(pkt + sizeof *h, argv[1], strlen(argv[1]));
	ready();
	wait_go();
	int ping = socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
	report("ping-socket", ping);
	if (ping >= 0)
		report("ping-sendto", sendto(ping, pkt, n, 0, (struct sockaddr *)&sa, len));
	int raw = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
	report("raw-socket", raw);
	h->checksum = checksum(pkt, n);
	if (raw >= 0)
		report("raw-sendto", sendto(raw, pkt, n, 0, (struct sockaddr *)&sa, len));
	return 0;
}

/* Fill a sockaddr_un for PATH, or for an abstract NAME when abstract. */
static socklen_t unix_addr(struct sockaddr_un *su, const char *name, int abstract)
{
	memset(su, 0, sizeof *su);
	su->sun_family = AF_UNIX;
	size_t n = strlen(name);
	if (n + 2 > sizeof su->sun_path) {
		say("ERROR unix name too long");
		_exit(2);
	}
	memcpy(su->sun_path + (abstract ? 1 : 0), name, n);
	/* A path counts its NUL; an abstract name counts its leading NUL. */
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
}

/* unix stream|dgram path|abstract NAME */
static int a_unix(int argc, char **argv)
{
	need_args(argc, 3, "unix stream|dgram path|abstract NAME");
	int stream = strcmp(argv[0], "stream") == 0;
	int abstract = strcmp(argv[1], "abstract") == 0;
	struct sockaddr_un su;
	socklen_t len = unix_addr(&su, argv[2], abstract);
	ready();
	wait_go();
	int fd = socket(AF_UNIX, stream ? SOCK_STREAM : SOCK_DGRAM, 0);
	report("socket", fd);
	if (stream)
		report("connect", connect(fd, (struct sockaddr *)&su, len));
	else
		report("sendto", sendto(fd, "unix", 4, 0, (struct sockaddr *)&su, len));
	hold();
	return 0;
}

/* Connect to SA every 20 ms for SECONDS; returns how many succeeded. */
static int connect_loop(const struct sockaddr_storage *sa, socklen_t len, long secs)
{
	int ok = 0;
	for (long i = 0; i < secs * 50; i++) {
		int fd = socket(sa->ss_family, SOCK_STREAM, 0);
		if (fd >= 0 && connect(fd, (const struct sockaddr *)sa, len) == 0)
			ok++;
		close(fd);
		usleep(20000);
	}
	return ok;
}

/*
 * persist IP PORT SECONDS: this process and a setsid() grandchild keep
 * trying to connect, for when the supervisor is killed under them.
 */
static int a_persist(int argc, char **argv)
{
	need_args(argc, 3, "persist IP PORT SECONDS");
	struct sockaddr_storage sa;
	socklen_t len = addr_of(&sa, "inet", argv[0], argv[1]);
	long secs = num(argv[2]);
	ready();
	wait_go();
	pid_t c = fork();
	if (c == 0) {
		setsid();
		if (fork() == 0) {
			say("RESULT persist-daemon ok=%d", connect_loop(&sa, len, secs));
			_exit(0);
		}
		_exit(0);
	}
	waitpid(c, NULL, 0);
	say("LOOPING");
	say("RESULT persist ok=%d", connect_loop(&sa, len, secs));
	return 0;
}

int main(int argc, char **argv)
{
	static const struct mode modes[] = {
		{"tcp", a_tcp},
		{"fastopen", a_fastopen},
		{"keyguess", a_keyguess},
		{"udp", a_udp},
		{"icmp", a_icmp},
		{"unix", a_unix},
		{"persist", a_persist},
		{0, 0},
	};
	return dispatch(modes, argc, argv);
}
