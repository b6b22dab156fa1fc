/*
 * netprobe: the network tests of crates/sandlock/tests/network.rs run it
 * inside sandboxes. Each operation prints one line, "NAME ok", "NAME =N"
 * (a count or a value) or "NAME errno=N", so that the test asserts what
 * the kernel answered; the listeners of the test count what arrived.
 *
 *   netprobe OP ARGS... [, OP ARGS...]...
 *
 *   tcp NAME HOST PORT          connect (HOST: IPv4 or IPv6 literal)
 *   tcpnb NAME HOST PORT        non-blocking connect ("NAME"), then wait
 *                               for it ("NAME-done": SO_ERROR)
 *   udp NAME HOST PORT          sendto one datagram
 *   udpmsg NAME HOST PORT       sendmsg one datagram
 *   mmsg NAME PORT HOST...      sendmmsg, one datagram per HOST; prints
 *                               the count, then retries from the first
 *                               unsent entry ("NAME-rest")
 *   ping NAME HOST              ICMP echo by a ping socket
 *   socket NAME inet|inet6 stream|dgram|icmp
 *   race NAME GOOD BAD PORT N   N connects while a thread flips the
 *                               address between GOOD and BAD; prints the
 *                               number that succeeded
 *   unix NAME PATH              stream connect to a named socket
 *   unixdg NAME PATH            dgram sendto a named socket
 *   unixmsg NAME PATH           dgram sendmsg to a named socket
 *   abstract NAME NAME2         stream connect to an abstract socket
 *   abstract-self NAME NAME2    listen on an abstract socket, connect to it
 *   unix-self NAME PATH         listen on a named socket, connect to it
 *                               (PATH "TMPDIR/x": under $TMPDIR)
 *   stall NAME GOOD FULL        a blocking connect (3 s timeout) to port
 *                               FULL, whose accept queue is full, while a
 *                               thread connects to port GOOD after 200 ms:
 *                               prints NAME (the stalled connect), then
 *                               NAME-helper and NAME-during (1 if the
 *                               helper finished while the stall lasted)
 *   scm NAME                    pass a descriptor over a socketpair
 *   resolve NAME HOSTNAME       getaddrinfo: prints the first address
 *   cat NAME PATH               prints the first line of a file
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int report(const char *name, long ret)
{
	if (ret < 0)
		printf("%s errno=%d\n", name, errno);
	else
		printf("%s ok\n", name);
	fflush(stdout);
	return 0;
}

static void value(const char *name, long v)
{
	printf("%s =%ld\n", name, v);
	fflush(stdout);
}

/* SA from an IPv4 or IPv6 literal and a port; its length. */
static socklen_t ip_addr(struct sockaddr_storage *sa, const char *host, const char *port)
{
	memset(sa, 0, sizeof *sa);
	struct sockaddr_in *s4 = (struct sockaddr_in *)sa;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)sa;
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((unsigned short)atoi(port));
		return sizeof *s4;
	}
	if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((unsigned short)atoi(port));
		return sizeof *s6;
	}
	fprintf(stderr, "bad address %s\n", host);
	exit(2);
}

static socklen_t unix_addr(struct sockaddr_un *su, const char *name, int abstract)
{
	memset(su, 0, sizeof *su);
	su->sun_family = AF_UNIX;
	size_t n = strlen(name);
	if (n + 2 > sizeof su->sun_path)
		exit(2);
	memcpy(su->sun_path + (abstract ? 1 : 0), name, n);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
}

struct flip {
	struct sockaddr_in *sa;
	struct in_addr a, b;
	volatile int stop;
};

/* Each address stays in place for a short spin, so that both are seen. */
static void *flipper(void *arg)
{
	struct flip *f = arg;
	for (unsigned long i = 0; !f->stop; i++) {
		f->sa->sin_addr = (i & 1) ? f->a : f->b;
		for (volatile int spin = 0; spin < 200; spin++)
			;
	}
	return NULL;
}

struct helper {
	const char *port;
	volatile int main_done;
	long ret;
	int err;
	int during;
};

static void *helper(void *arg)
{
	struct helper *h = arg;
	usleep(200000);
	struct sockaddr_storage sa;
	socklen_t len = ip_addr(&sa, "127.0.0.1", h->port);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	h->ret = connect(fd, (struct sockaddr *)&sa, len);
	h->err = errno;
	h->during = !h->main_done;
	close(fd);
	return NULL;
}

static int run(char **a)
{
	const char *op = a[0], *name = a[1];
	if (!strcmp(op, "tcp") || !strcmp(op, "udp") || !strcmp(op, "udpmsg")) {
		struct sockaddr_storage sa;
		socklen_t len = ip_addr(&sa, a[2], a[3]);
		int dgram = op[0] == 'u';
		int fd = socket(sa.ss_family, dgram ? SOCK_DGRAM : SOCK_STREAM, 0);
		if (fd < 0)
			return report(name, -1), 4;
		if (!strcmp(op, "tcp")) {
			report(name, connect(fd, (struct sockaddr *)&sa, len));
		} else if (!strcmp(op, "udp")) {
			report(name, sendto(fd, "sandlock", 8, 0, (struct sockaddr *)&sa, len));
		} else {
			struct iovec iov = {"sandlock", 8};
			struct msghdr m = {.msg_name = &sa, .msg_namelen = len, .msg_iov = &iov, .msg_iovlen = 1};
			report(name, sendmsg(fd, &m, 0));
		}
		close(fd);
		return 4;
	}
	if (!strcmp(op, "tcpnb")) {
		struct sockaddr_storage sa;
		socklen_t len = ip_addr(&sa, a[2], a[3]);
		int fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
		report(name, connect(fd, (struct sockaddr *)&sa, len));
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		int err = 0;
		socklen_t el = sizeof err;
		char done[64];
		snprintf(done, sizeof done, "%s-done", name);
		if (poll(&p, 1, 10000) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0)
			report(done, -1);
		else if (err) {
			errno = err;
			report(done, -1);
		} else
			report(done, 0);
		close(fd);
		return 4;
	}
	if (!strcmp(op, "mmsg")) {
		int n = 0;
		while (a[3 + n] && strcmp(a[3 + n], ","))
			n++;
		struct sockaddr_storage sa[8];
		struct mmsghdr v[8];
		struct iovec iov = {"sandlock", 8};
		memset(v, 0, sizeof v);
		int fd = -1;
		for (int i = 0; i < n && i < 8; i++) {
			socklen_t len = ip_addr(&sa[i], a[3 + i], a[2]);
			v[i].msg_hdr.msg_name = &sa[i];
			v[i].msg_hdr.msg_namelen = len;
			v[i].msg_hdr.msg_iov = &iov;
			v[i].msg_hdr.msg_iovlen = 1;
			if (fd < 0)
				fd = socket(sa[i].ss_family, SOCK_DGRAM, 0);
		}
		int sent = sendmmsg(fd, v, n, 0);
		if (sent < 0)
			report(name, -1);
		else
			value(name, sent);
		if (sent >= 0 && sent < n) {
			char rest[64];
			snprintf(rest, sizeof rest, "%s-rest", name);
			int again = sendmmsg(fd, v + sent, n - sent, 0);
			if (again < 0)
				report(rest, -1);
			else
				value(rest, again);
		}
		if (sent > 0) {
			char len0[64];
			snprintf(len0, sizeof len0, "%s-len0", name);
			value(len0, v[0].msg_len);
		}
		close(fd);
		return 3 + n;
	}
	if (!strcmp(op, "ping")) {
		struct sockaddr_storage sa;
		socklen_t len = ip_addr(&sa, a[2], "0");
		struct icmphdr h = {.type = ICMP_ECHO};
		h.un.echo.id = htons(0x5e5e);
		int fd = socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
		if (fd < 0)
			return report(name, -1), 3;
		report(name, sendto(fd, &h, sizeof h, 0, (struct sockaddr *)&sa, len));
		close(fd);
		return 3;
	}
	if (!strcmp(op, "socket")) {
		int fam = strcmp(a[2], "inet6") ? AF_INET : AF_INET6;
		int icmp = !strcmp(a[3], "icmp");
		int type = strcmp(a[3], "stream") ? SOCK_DGRAM : SOCK_STREAM;
		int proto = icmp ? (fam == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6) : 0;
		int fd = socket(fam, type, proto);
		report(name, fd);
		if (fd >= 0)
			close(fd);
		return 4;
	}
	if (!strcmp(op, "race")) {
		struct sockaddr_storage ss;
		ip_addr(&ss, a[2], a[4]);
		struct sockaddr_in *sa = (struct sockaddr_in *)&ss;
		struct flip f = {.sa = sa};
		inet_pton(AF_INET, a[2], &f.a);
		inet_pton(AF_INET, a[3], &f.b);
		pthread_t t;
		pthread_create(&t, NULL, flipper, &f);
		long ok = 0, n = atol(a[5]);
		for (long i = 0; i < n; i++) {
			int fd = socket(AF_INET, SOCK_STREAM, 0);
			if (connect(fd, (struct sockaddr *)sa, sizeof *sa) == 0)
				ok++;
			close(fd);
		}
		f.stop = 1;
		pthread_join(t, NULL);
		value(name, ok);
		return 6;
	}
	if (!strcmp(op, "unix") || !strcmp(op, "unixdg") || !strcmp(op, "unixmsg") ||
	    !strcmp(op, "abstract")) {
		struct sockaddr_un su;
		socklen_t len = unix_addr(&su, a[2], !strcmp(op, "abstract"));
		int stream = !strcmp(op, "unix") || !strcmp(op, "abstract");
		int fd = socket(AF_UNIX, stream ? SOCK_STREAM : SOCK_DGRAM, 0);
		if (stream) {
			report(name, connect(fd, (struct sockaddr *)&su, len));
		} else if (!strcmp(op, "unixdg")) {
			report(name, sendto(fd, "sandlock", 8, 0, (struct sockaddr *)&su, len));
		} else {
			struct iovec iov = {"sandlock", 8};
			struct msghdr m = {.msg_name = &su, .msg_namelen = len, .msg_iov = &iov, .msg_iovlen = 1};
			report(name, sendmsg(fd, &m, 0));
		}
		close(fd);
		return 3;
	}
	if (!strcmp(op, "abstract-self") || !strcmp(op, "unix-self")) {
		struct sockaddr_un su;
		char path[200];
		const char *tmp = getenv("TMPDIR");
		if (!strncmp(a[2], "TMPDIR/", 7) && tmp)
			snprintf(path, sizeof path, "%s/%s", tmp, a[2] + 7);
		else
			snprintf(path, sizeof path, "%s", a[2]);
		socklen_t len = unix_addr(&su, path, op[0] == 'a');
		int l = socket(AF_UNIX, SOCK_STREAM, 0);
		if (bind(l, (struct sockaddr *)&su, len) != 0 || listen(l, 1) != 0)
			return report(name, -1), 3;
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);
		report(name, connect(fd, (struct sockaddr *)&su, len));
		close(fd);
		close(l);
		return 3;
	}
	if (!strcmp(op, "stall")) {
		struct sockaddr_storage full;
		socklen_t len = ip_addr(&full, "127.0.0.1", a[3]);
		/* The first connection fills the listener's accept queue. */
		int first = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(first, (struct sockaddr *)&full, len) != 0)
			return report(name, -1), 4;
		struct helper h = {.port = a[2]};
		pthread_t t;
		pthread_create(&t, NULL, helper, &h);
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		struct timeval tv = {.tv_sec = 3};
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
		long r = connect(fd, (struct sockaddr *)&full, len);
		int e = errno;
		h.main_done = 1;
		pthread_join(t, NULL);
		errno = e;
		report(name, r);
		char n2[64];
		snprintf(n2, sizeof n2, "%s-helper", name);
		errno = h.err;
		report(n2, h.ret);
		snprintf(n2, sizeof n2, "%s-during", name);
		value(n2, h.during);
		close(fd);
		close(first);
		return 4;
	}
	if (!strcmp(op, "scm")) {
		int sv[2];
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
			return report(name, -1), 2;
		int p[2];
		if (pipe(p) != 0)
			return report(name, -1), 2;
		char cbuf[CMSG_SPACE(sizeof(int))];
		memset(cbuf, 0, sizeof cbuf);
		struct iovec iov = {"x", 1};
		struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
				   .msg_controllen = sizeof cbuf};
		struct cmsghdr *c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &p[1], sizeof(int));
		if (sendmsg(sv[0], &m, 0) != 1)
			return report(name, -1), 2;
		char got;
		char rbuf[CMSG_SPACE(sizeof(int))];
		struct iovec riov = {&got, 1};
		struct msghdr r = {.msg_iov = &riov, .msg_iovlen = 1, .msg_control = rbuf,
				   .msg_controllen = sizeof rbuf};
		if (recvmsg(sv[1], &r, 0) != 1)
			return report(name, -1), 2;
		int wfd;
		memcpy(&wfd, CMSG_DATA(CMSG_FIRSTHDR(&r)), sizeof(int));
		/* The received descriptor is the pipe's write end. */
		char b = 0;
		if (write(wfd, "z", 1) != 1 || read(p[0], &b, 1) != 1 || b != 'z')
			return report(name, -1), 2;
		return report(name, 0), 2;
	}
	if (!strcmp(op, "resolve")) {
		struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_INET}, *res;
		int e = getaddrinfo(a[2], NULL, &hints, &res);
		if (e != 0) {
			printf("%s gai=%d\n", name, e);
			fflush(stdout);
			return 3;
		}
		char buf[64];
		inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr, buf, sizeof buf);
		printf("%s =%s\n", name, buf);
		fflush(stdout);
		freeaddrinfo(res);
		return 3;
	}
	if (!strcmp(op, "cat")) {
		FILE *f = fopen(a[2], "r");
		char line[256] = "";
		if (!f)
			return report(name, -1), 3;
		/* The first line that is not a comment. */
		while (fgets(line, sizeof line, f) && line[0] == '#')
			;
		line[strcspn(line, "\n")] = 0;
		fclose(f);
		printf("%s =%s\n", name, line);
		fflush(stdout);
		return 3;
	}
	fprintf(stderr, "netprobe: unknown operation %s\n", op);
	exit(2);
}

int main(int argc, char **argv)
{
	int i = 1;
	while (i < argc) {
		if (!strcmp(argv[i], ",")) {
			i++;
			continue;
		}
		i += run(argv + i);
	}
	return 0;
}
