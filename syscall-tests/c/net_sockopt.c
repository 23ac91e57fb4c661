/* Checks socket options of TCP and UDP sockets (IPv4 and IPv6): defaults and read-back of SOL_SOCKET, IPPROTO_TCP, IPPROTO_IP and IPPROTO_IPV6 options, buffer-size doubling and clamping, TCP_INFO states, TCP_MAXSEG before and after connect, TCP_CONGESTION, short and long optlen, and the errors for bad values. Values printed are those of the host kernel's defaults and sysctls, which the sandbox shares. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static int failures;

/* An address that is never mapped. */
#define BADPTR ((void *)16)

static const char *errname(int e)
{
	switch (e) {
	case 0: return "0";
	case EPIPE: return "EPIPE";
	case EAGAIN: return "EAGAIN";
	case EBADF: return "EBADF";
	case EINTR: return "EINTR";
	case EINVAL: return "EINVAL";
	case EFAULT: return "EFAULT";
	case ENOENT: return "ENOENT";
	case ENOSYS: return "ENOSYS";
	case EPERM: return "EPERM";
	case EACCES: return "EACCES";
	case ENOTCONN: return "ENOTCONN";
	case EISCONN: return "EISCONN";
	case ECONNREFUSED: return "ECONNREFUSED";
	case ECONNRESET: return "ECONNRESET";
	case ECONNABORTED: return "ECONNABORTED";
	case EADDRINUSE: return "EADDRINUSE";
	case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
	case EINPROGRESS: return "EINPROGRESS";
	case EALREADY: return "EALREADY";
	case EDESTADDRREQ: return "EDESTADDRREQ";
	case EMSGSIZE: return "EMSGSIZE";
	case ENOTSOCK: return "ENOTSOCK";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case ENOPROTOOPT: return "ENOPROTOOPT";
	case EPROTOTYPE: return "EPROTOTYPE";
	case EAFNOSUPPORT: return "EAFNOSUPPORT";
	case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
	case ESOCKTNOSUPPORT: return "ESOCKTNOSUPPORT";
	case ENETUNREACH: return "ENETUNREACH";
	case EHOSTUNREACH: return "EHOSTUNREACH";
	case ETIMEDOUT: return "ETIMEDOUT";
	case ESPIPE: return "ESPIPE";
	case EDOM: return "EDOM";
	case ENOTTY: return "ENOTTY";
	case ENOMEM: return "ENOMEM";
	case ENOBUFS: return "ENOBUFS";
	case EMFILE: return "EMFILE";
	default: return "E?";
	}
}

#define CHECK(cond, what)                                                   \
	do {                                                                \
		if (cond)                                                   \
			printf("%s: ok\n", what);                           \
		else {                                                      \
			printf("%s: FAIL (errno %s)\n", what, errname(errno)); \
			failures++;                                         \
		}                                                           \
	} while (0)

/* Checks that `expr` fails with errno `err`. */
#define CHECK_ERR(expr, err, what)                                          \
	do {                                                                \
		errno = 0;                                                  \
		long r_ = (long)(expr);                                     \
		int e_ = errno;                                             \
		if (r_ == -1 && e_ == (err))                                \
			printf("%s: %s\n", what, errname(e_));              \
		else {                                                      \
			printf("%s: FAIL (got %ld, errno %s, want %s)\n", what, r_, errname(e_), errname(err)); \
			failures++;                                         \
		}                                                           \
	} while (0)

static __attribute__((unused)) pid_t xfork(void)
{
	fflush(stdout);
	return fork();
}

static __attribute__((unused)) int reaped_ok(pid_t pid)
{
	int st = 0;
	return waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static __attribute__((unused)) int finish(void)
{
	if (failures) {
		printf("%d failures\n", failures);
		return 1;
	}
	printf("all ok\n");
	return 0;
}

/* poll/epoll event bits as names, e.g. "IN|OUT|RDHUP". */
static __attribute__((unused)) const char *evnames(unsigned ev)
{
	static char b[128];
	static const struct { unsigned bit; const char *name; } t[] = {
		{ POLLIN, "IN" }, { POLLPRI, "PRI" }, { POLLOUT, "OUT" }, { POLLERR, "ERR" },
		{ POLLHUP, "HUP" }, { POLLNVAL, "NVAL" }, { POLLRDHUP, "RDHUP" },
	};
	b[0] = 0;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (ev & t[i].bit) {
			if (b[0])
				strcat(b, "|");
			strcat(b, t[i].name);
		}
	if (!b[0])
		strcpy(b, "none");
	return b;
}

/* Polls one fd for `ev` (0: only ERR/HUP) up to `ms`; returns revents, 0 on timeout. */
static __attribute__((unused)) unsigned wait_fd(int fd, short ev, int ms)
{
	struct pollfd p = { fd, ev, 0 };
	int r;
	do
		r = poll(&p, 1, ms);
	while (r < 0 && errno == EINTR);
	return r == 1 ? (unsigned)p.revents : 0;
}

/* Poll right now, for all the interesting events. */
static __attribute__((unused)) unsigned poll_now(int fd)
{
	return wait_fd(fd, POLLIN | POLLOUT | POLLRDHUP, 0);
}

static __attribute__((unused)) int read_full(int fd, void *b, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, (char *)b + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

static __attribute__((unused)) int write_full(int fd, const void *b, size_t n)
{
	size_t off = 0;
	while (off < n) {
		ssize_t r = write(fd, (const char *)b + off, n - off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		off += (size_t)r;
	}
	return 0;
}

static __attribute__((unused)) int geti(int fd, int level, int opt)
{
	int v = -12345;
	socklen_t l = sizeof v;
	if (getsockopt(fd, level, opt, &v, &l) != 0 || l != sizeof v)
		return -12345;
	return v;
}

static __attribute__((unused)) int seti(int fd, int level, int opt, int v)
{
	return setsockopt(fd, level, opt, &v, sizeof v);
}

/* Loopback address of `family`, port `port` (network order). */
static __attribute__((unused)) socklen_t loop_addr(int family, struct sockaddr_storage *ss, in_port_t port)
{
	memset(ss, 0, sizeof *ss);
	if (family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_loopback;
		a->sin6_port = port;
		return sizeof *a;
	}
	struct sockaddr_in *a = (struct sockaddr_in *)ss;
	a->sin_family = AF_INET;
	a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a->sin_port = port;
	return sizeof *a;
}

static __attribute__((unused)) in_port_t port_of(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET6)
		return ((const struct sockaddr_in6 *)ss)->sin6_port;
	return ((const struct sockaddr_in *)ss)->sin_port;
}

/* Same family, address and port. */
static __attribute__((unused)) int same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
		return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
	}
	const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
	return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
}

static __attribute__((unused)) int is_loopback(const struct sockaddr_storage *a)
{
	if (a->ss_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr, &in6addr_loopback, 16) == 0;
	return a->ss_family == AF_INET && ((const struct sockaddr_in *)a)->sin_addr.s_addr == htonl(INADDR_LOOPBACK);
}

/* Prints an int option's value, or the errno name. */
static void show(int fd, int level, int opt, const char *name)
{
	int v = -12345;
	socklen_t l = sizeof v;
	if (getsockopt(fd, level, opt, &v, &l) != 0)
		printf("%s: error %s\n", name, errname(errno));
	else if (l != sizeof v)
		printf("%s: length %u\n", name, (unsigned)l);
	else
		printf("%s = %d\n", name, v);
}

/* Sets an int option and prints what reads back (or the errno name). */
static void set_show(int fd, int level, int opt, int v, const char *name)
{
	if (setsockopt(fd, level, opt, &v, sizeof v) != 0) {
		printf("%s := %d: error %s\n", name, v, errname(errno));
		return;
	}
	int g = -12345;
	socklen_t l = sizeof g;
	if (getsockopt(fd, level, opt, &g, &l) != 0)
		printf("%s := %d: reads back error %s\n", name, v, errname(errno));
	else
		printf("%s := %d: reads back %d\n", name, v, g);
}

#define SHOW(fd, level, opt) show(fd, level, opt, #opt)
#define SET(fd, level, opt, v) set_show(fd, level, opt, v, #opt)

static void tcp_options(int family, const char *tag)
{
	printf("-- %s TCP, unconnected\n", tag);
	int s = socket(family, SOCK_STREAM, 0);
	SHOW(s, SOL_SOCKET, SO_ERROR);
	SHOW(s, SOL_SOCKET, SO_REUSEADDR);
	SHOW(s, SOL_SOCKET, SO_REUSEPORT);
	SHOW(s, SOL_SOCKET, SO_KEEPALIVE);
	SHOW(s, SOL_SOCKET, SO_OOBINLINE);
	SHOW(s, SOL_SOCKET, SO_RCVLOWAT);
	SHOW(s, SOL_SOCKET, SO_SNDLOWAT);
	SHOW(s, SOL_SOCKET, SO_DONTROUTE);
	SHOW(s, SOL_SOCKET, SO_BROADCAST);
	SHOW(s, SOL_SOCKET, SO_PRIORITY);
	SHOW(s, SOL_SOCKET, SO_SNDBUF);
	SHOW(s, SOL_SOCKET, SO_RCVBUF);
	SET(s, SOL_SOCKET, SO_SNDBUF, 4096);
	SET(s, SOL_SOCKET, SO_RCVBUF, 4096);
	SET(s, SOL_SOCKET, SO_SNDBUF, 1);
	SET(s, SOL_SOCKET, SO_RCVBUF, 1);
	SET(s, SOL_SOCKET, SO_SNDBUF, 0x7fffffff);
	SET(s, SOL_SOCKET, SO_RCVBUF, -5);
	SET(s, SOL_SOCKET, SO_REUSEPORT, 1);
	SET(s, SOL_SOCKET, SO_OOBINLINE, 1);
	SET(s, SOL_SOCKET, SO_RCVLOWAT, 100);
	SET(s, SOL_SOCKET, SO_RCVLOWAT, 0);
	SET(s, SOL_SOCKET, SO_PRIORITY, 3);
	SET(s, SOL_SOCKET, SO_DONTROUTE, 1);
	{
		struct linger lg;
		socklen_t l = sizeof lg;
		memset(&lg, 0xff, sizeof lg);
		CHECK(getsockopt(s, SOL_SOCKET, SO_LINGER, &lg, &l) == 0 && l == sizeof lg && lg.l_onoff == 0 && lg.l_linger == 0, "SO_LINGER default {0, 0}");
		lg = (struct linger){ 1, 7 };
		l = sizeof lg;
		CHECK(setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0 && getsockopt(s, SOL_SOCKET, SO_LINGER, &lg, &l) == 0 && lg.l_onoff == 1 && lg.l_linger == 7,
		      "SO_LINGER {1, 7} reads back");
		CHECK_ERR(setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg - 1), EINVAL, "SO_LINGER with a short optlen");
	}
	{
		struct timeval tv = { 2, 500000 };
		socklen_t l = sizeof tv;
		CHECK(setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) == 0 && getsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, &l) == 0 && l == sizeof tv &&
			      tv.tv_sec == 2 && tv.tv_usec == 500000,
		      "SO_SNDTIMEO 2.5 s reads back");
		tv = (struct timeval){ 0, 0 };
		l = sizeof tv;
		CHECK(getsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, &l) == 0 && tv.tv_sec == 0 && tv.tv_usec == 0, "SO_RCVTIMEO default 0");
		tv.tv_usec = 1000000;
		CHECK_ERR(setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), EDOM, "SO_RCVTIMEO with tv_usec 1000000");
		CHECK_ERR(setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, 4), EINVAL, "SO_RCVTIMEO with optlen 4");
		tv = (struct timeval){ -1, 0 };
		l = sizeof tv;
		CHECK(setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0 && getsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, &l) == 0 && tv.tv_sec == 0 && tv.tv_usec == 0,
		      "SO_RCVTIMEO with a negative time means no timeout");
	}
	SHOW(s, IPPROTO_TCP, TCP_NODELAY);
	SHOW(s, IPPROTO_TCP, TCP_MAXSEG);
	SHOW(s, IPPROTO_TCP, TCP_CORK);
	SHOW(s, IPPROTO_TCP, TCP_KEEPIDLE);
	SHOW(s, IPPROTO_TCP, TCP_KEEPINTVL);
	SHOW(s, IPPROTO_TCP, TCP_KEEPCNT);
	SHOW(s, IPPROTO_TCP, TCP_SYNCNT);
	SHOW(s, IPPROTO_TCP, TCP_USER_TIMEOUT);
	SHOW(s, IPPROTO_TCP, TCP_DEFER_ACCEPT);
	SHOW(s, IPPROTO_TCP, TCP_QUICKACK);
	SET(s, IPPROTO_TCP, TCP_CORK, 1);
	SET(s, IPPROTO_TCP, TCP_CORK, 0);
	SET(s, IPPROTO_TCP, TCP_KEEPIDLE, 30);
	SET(s, IPPROTO_TCP, TCP_KEEPIDLE, 0);
	SET(s, IPPROTO_TCP, TCP_KEEPINTVL, 5);
	SET(s, IPPROTO_TCP, TCP_KEEPINTVL, 40000);
	SET(s, IPPROTO_TCP, TCP_KEEPCNT, 3);
	SET(s, IPPROTO_TCP, TCP_KEEPCNT, 128);
	SET(s, IPPROTO_TCP, TCP_SYNCNT, 2);
	SET(s, IPPROTO_TCP, TCP_SYNCNT, 0);
	SET(s, IPPROTO_TCP, TCP_USER_TIMEOUT, 5000);
	SET(s, IPPROTO_TCP, TCP_USER_TIMEOUT, -1);
	SET(s, IPPROTO_TCP, TCP_MAXSEG, 1000);
	SET(s, IPPROTO_TCP, TCP_MAXSEG, 10);
	{
		char cc[32] = "";
		socklen_t l = sizeof cc;
		CHECK(getsockopt(s, IPPROTO_TCP, TCP_CONGESTION, cc, &l) == 0 && l > 0, "TCP_CONGESTION");
		printf("TCP_CONGESTION = %s\n", cc);
		CHECK_ERR(setsockopt(s, IPPROTO_TCP, TCP_CONGESTION, "no-such-cc", 10), ENOENT, "TCP_CONGESTION unknown algorithm");
		CHECK(setsockopt(s, IPPROTO_TCP, TCP_CONGESTION, cc, (socklen_t)strlen(cc)) == 0, "TCP_CONGESTION set to the current one");
	}
	{
		struct tcp_info ti;
		socklen_t l = sizeof ti;
		memset(&ti, 0xff, sizeof ti);
		CHECK(getsockopt(s, IPPROTO_TCP, TCP_INFO, &ti, &l) == 0 && l > 0, "TCP_INFO");
		printf("TCP_INFO state of a new socket: %d (TCP_CLOSE is %d)\n", ti.tcpi_state, TCP_CLOSE);
	}
	/* Short and long optlen. */
	{
		int v = 0x11223344;
		socklen_t l = 2;
		CHECK(getsockopt(s, SOL_SOCKET, SO_TYPE, &v, &l) == 0, "SO_TYPE with optlen 2");
		printf("SO_TYPE with optlen 2: length %u, value 0x%x\n", (unsigned)l, (unsigned)v);
		int big[4] = { -1, -1, -1, -1 };
		l = sizeof big;
		CHECK(getsockopt(s, SOL_SOCKET, SO_TYPE, big, &l) == 0, "SO_TYPE with optlen 16");
		printf("SO_TYPE with optlen 16: length %u, value %d, next word untouched %d\n", (unsigned)l, big[0], big[1] == -1);
		l = 0;
		CHECK(getsockopt(s, SOL_SOCKET, SO_TYPE, &v, &l) == 0, "SO_TYPE with optlen 0");
		printf("SO_TYPE with optlen 0: length %u\n", (unsigned)l);
		l = 2;
		v = 0x11223344;
		errno = 0;
		int r = getsockopt(s, IPPROTO_TCP, TCP_NODELAY, &v, &l);
		printf("TCP_NODELAY with optlen 2: %d %s length %u\n", r, errname(r ? errno : 0), (unsigned)l);
		int one = 1;
		CHECK(setsockopt(s, IPPROTO_TCP, TCP_NODELAY, big, sizeof big) == 0 && setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, &one, 8) == 0, "setsockopt with a long optlen");
	}
	CHECK_ERR(setsockopt(s, SOL_SOCKET, SO_ACCEPTCONN, &(int){ 1 }, sizeof(int)), ENOPROTOOPT, "set SO_ACCEPTCONN");
	CHECK_ERR(setsockopt(s, SOL_SOCKET, SO_ERROR, &(int){ 1 }, sizeof(int)), ENOPROTOOPT, "set SO_ERROR");
	CHECK_ERR(setsockopt(s, 12345, 1, &(int){ 1 }, sizeof(int)), ENOPROTOOPT, "setsockopt unknown level");
	CHECK_ERR(setsockopt(s, SOL_SOCKET, SO_REUSEADDR, NULL, 0), EINVAL, "SO_REUSEADDR with optlen 0");

	if (family == AF_INET) {
		SHOW(s, IPPROTO_IP, IP_TOS);
		SHOW(s, IPPROTO_IP, IP_TTL);
		SHOW(s, IPPROTO_IP, IP_MTU_DISCOVER);
		SHOW(s, IPPROTO_IP, IP_RECVERR);
		SHOW(s, IPPROTO_IP, IP_FREEBIND);
		SET(s, IPPROTO_IP, IP_TOS, 0x10);
		SET(s, IPPROTO_IP, IP_TTL, 1);
		SET(s, IPPROTO_IP, IP_TTL, 255);
		SET(s, IPPROTO_IP, IP_TTL, 0);
		SET(s, IPPROTO_IP, IP_TTL, 256);
		SET(s, IPPROTO_IP, IP_TTL, -1);
		SET(s, IPPROTO_IP, IP_RECVERR, 1);
		SET(s, IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DONT);
		{
			int v = 0x11223344;
			socklen_t l = 2;
			errno = 0;
			int r = getsockopt(s, IPPROTO_IP, IP_TTL, &v, &l);
			printf("IP_TTL with optlen 2: %d %s length %u low byte %d\n", r, errname(r ? errno : 0), (unsigned)l, v & 0xff);
		}
		CHECK_ERR(getsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &(int){ 0 }, &(socklen_t){ sizeof(int) }), EOPNOTSUPP, "IPPROTO_IPV6 option on an AF_INET TCP socket");
		CHECK_ERR(getsockopt(s, IPPROTO_IP, IP_MTU, &(int){ 0 }, &(socklen_t){ sizeof(int) }), ENOTCONN, "IP_MTU unconnected");
	} else {
		SHOW(s, IPPROTO_IPV6, IPV6_V6ONLY);
		SHOW(s, IPPROTO_IPV6, IPV6_UNICAST_HOPS);
		SHOW(s, IPPROTO_IPV6, IPV6_TCLASS);
		SHOW(s, IPPROTO_IPV6, IPV6_RECVPKTINFO);
		SET(s, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 7);
		SET(s, IPPROTO_IPV6, IPV6_UNICAST_HOPS, -1);
		SET(s, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 256);
		SET(s, IPPROTO_IPV6, IPV6_TCLASS, 0x20);
		SET(s, IPPROTO_IPV6, IPV6_TCLASS, 256);
		SHOW(s, IPPROTO_IP, IP_TOS);
	}
	close(s);

	/* On a listener and on a connection. */
	printf("-- %s TCP, listening and connected\n", tag);
	struct sockaddr_storage a;
	socklen_t al = loop_addr(family, &a, 0), l = sizeof a;
	int ls = socket(family, SOCK_STREAM, 0);
	CHECK(bind(ls, (struct sockaddr *)&a, al) == 0 && listen(ls, 4) == 0 && getsockname(ls, (struct sockaddr *)&a, &l) == 0, "listener");
	{
		struct tcp_info ti;
		socklen_t tl = sizeof ti;
		CHECK(getsockopt(ls, IPPROTO_TCP, TCP_INFO, &ti, &tl) == 0, "TCP_INFO of the listener");
		printf("TCP_INFO state of a listener: %d (TCP_LISTEN is %d)\n", ti.tcpi_state, TCP_LISTEN);
	}
	SET(ls, IPPROTO_TCP, TCP_DEFER_ACCEPT, 5);
	int keep = 1;
	CHECK(setsockopt(ls, SOL_SOCKET, SO_KEEPALIVE, &keep, sizeof keep) == 0 && setsockopt(ls, IPPROTO_TCP, TCP_NODELAY, &keep, sizeof keep) == 0, "listener: SO_KEEPALIVE, TCP_NODELAY");
	int c = socket(family, SOCK_STREAM, 0);
	CHECK(connect(c, (struct sockaddr *)&a, al) == 0, "connect");
	CHECK(send(c, "x", 1, 0) == 1, "send (TCP_DEFER_ACCEPT waits for data)");
	int s2 = accept(ls, NULL, NULL);
	CHECK(s2 >= 0, "accept");
	printf("accepted socket inherits: SO_KEEPALIVE %d TCP_NODELAY %d\n", geti(s2, SOL_SOCKET, SO_KEEPALIVE), geti(s2, IPPROTO_TCP, TCP_NODELAY));
	SHOW(c, IPPROTO_TCP, TCP_MAXSEG);
	{
		struct tcp_info ti;
		socklen_t tl = sizeof ti;
		CHECK(getsockopt(c, IPPROTO_TCP, TCP_INFO, &ti, &tl) == 0, "TCP_INFO of the client");
		printf("TCP_INFO state of a connection: %d (TCP_ESTABLISHED is %d)\n", ti.tcpi_state, TCP_ESTABLISHED);
	}
	if (family == AF_INET) {
		SHOW(c, IPPROTO_IP, IP_MTU);
	} else {
		SHOW(c, IPPROTO_IPV6, IPV6_MTU);
	}
	CHECK_ERR(setsockopt(c, IPPROTO_TCP, TCP_MAXSEG, &(int){ 10 }, sizeof(int)), EINVAL, "TCP_MAXSEG 10 on a connection");
	close(s2);
	close(c);
	close(ls);
}

static void udp_options(int family, const char *tag)
{
	printf("-- %s UDP\n", tag);
	int u = socket(family, SOCK_DGRAM, 0);
	SHOW(u, SOL_SOCKET, SO_SNDBUF);
	SHOW(u, SOL_SOCKET, SO_RCVBUF);
	SHOW(u, SOL_SOCKET, SO_BROADCAST);
	SHOW(u, SOL_SOCKET, SO_NO_CHECK);
	SET(u, SOL_SOCKET, SO_RCVBUF, 65536);
	SET(u, SOL_SOCKET, SO_NO_CHECK, 1);
	if (family == AF_INET) {
		SHOW(u, IPPROTO_IP, IP_MULTICAST_TTL);
		SHOW(u, IPPROTO_IP, IP_MULTICAST_LOOP);
		SHOW(u, IPPROTO_IP, IP_PKTINFO);
		SHOW(u, IPPROTO_IP, IP_RECVTOS);
		SET(u, IPPROTO_IP, IP_MULTICAST_TTL, 5);
		SET(u, IPPROTO_IP, IP_MULTICAST_LOOP, 0);
		SET(u, IPPROTO_IP, IP_RECVTTL, 1);
	} else {
		SHOW(u, IPPROTO_IPV6, IPV6_MULTICAST_HOPS);
		SHOW(u, IPPROTO_IPV6, IPV6_MULTICAST_LOOP);
		SET(u, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1);
		SET(u, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, 300);
	}
	CHECK_ERR(setsockopt(u, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int)), ENOPROTOOPT, "TCP_NODELAY on UDP");
	SHOW(u, IPPROTO_UDP, UDP_CORK);
	SET(u, IPPROTO_UDP, UDP_CORK, 1);
	close(u);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	tcp_options(AF_INET, "IPv4");
	tcp_options(AF_INET6, "IPv6");
	udp_options(AF_INET, "IPv4");
	udp_options(AF_INET6, "IPv6");
	return finish();
}
