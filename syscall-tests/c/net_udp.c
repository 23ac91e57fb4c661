/* Checks UDP over loopback (IPv4 and IPv6): sendto/recvfrom and sender names, datagram boundaries, MSG_PEEK, FIONREAD, MSG_TRUNC, empty datagrams, size limits, connected UDP (filtering, AF_UNSPEC, ECONNREFUSED from ICMP), sendmmsg/recvmmsg, IP_PKTINFO, v4-mapped senders on a dual-stack socket, SO_RCVTIMEO, readiness, and bad arguments. Ports are ephemeral and never printed. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/uio.h>
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

/* A UDP socket bound to the loopback address of `family`, port 0; its name goes to *a. */
static int udp_bound(int family, struct sockaddr_storage *a, socklen_t *len)
{
	int s = socket(family, SOCK_DGRAM, 0);
	if (s < 0)
		return -1;
	*len = loop_addr(family, a, 0);
	socklen_t l = sizeof *a;
	if (bind(s, (struct sockaddr *)a, *len) != 0 || getsockname(s, (struct sockaddr *)a, &l) != 0 || l != *len) {
		close(s);
		return -1;
	}
	return s;
}

/* Waits until fd is readable, then receives without blocking. */
static ssize_t recv_wait(int fd, void *b, size_t n, int flags)
{
	if (!(wait_fd(fd, POLLIN, 5000) & POLLIN)) {
		errno = ETIMEDOUT;
		return -1;
	}
	return recv(fd, b, n, flags | MSG_DONTWAIT);
}

static void basics(int family, const char *tag)
{
	struct sockaddr_storage aa, ba, from, x;
	socklen_t al, bl, fl;
	char buf[256], what[160];
	int v;
#define T(s) (snprintf(what, sizeof what, "%s: %s", tag, s), what)

	int u = socket(family, SOCK_DGRAM, 0);
	CHECK(u >= 0, T("socket SOCK_DGRAM"));
	CHECK(geti(u, SOL_SOCKET, SO_TYPE) == SOCK_DGRAM, T("SO_TYPE is SOCK_DGRAM"));
	CHECK(geti(u, SOL_SOCKET, SO_PROTOCOL) == IPPROTO_UDP, T("SO_PROTOCOL is IPPROTO_UDP"));
	CHECK(geti(u, SOL_SOCKET, SO_DOMAIN) == family, T("SO_DOMAIN"));
	CHECK(geti(u, SOL_SOCKET, SO_ACCEPTCONN) == 0, T("SO_ACCEPTCONN 0"));
	CHECK(geti(u, SOL_SOCKET, SO_BROADCAST) == 0, T("SO_BROADCAST default 0"));
	CHECK(seti(u, SOL_SOCKET, SO_BROADCAST, 1) == 0 && geti(u, SOL_SOCKET, SO_BROADCAST) == 1, T("SO_BROADCAST set"));
	CHECK_ERR(listen(u, 1), EOPNOTSUPP, T("listen on UDP"));
	CHECK_ERR(accept(u, NULL, NULL), EOPNOTSUPP, T("accept on UDP"));
	socklen_t l = sizeof x;
	CHECK(getsockname(u, (struct sockaddr *)&x, &l) == 0 && l == loop_addr(family, &aa, 0) && x.ss_family == family && port_of(&x) == 0 && !is_loopback(&x),
	      T("getsockname unbound: wildcard, port 0"));
	CHECK_ERR(send(u, "x", 1, 0), EDESTADDRREQ, T("send without an address"));
	l = sizeof x;
	CHECK(getsockname(u, (struct sockaddr *)&x, &l) == 0 && port_of(&x) != 0 && !is_loopback(&x), T("the failed send still bound a port"));
	l = sizeof x;
	CHECK_ERR(getpeername(u, (struct sockaddr *)&x, &l), ENOTCONN, T("getpeername unconnected"));
	printf("%s: fresh socket polls: %s\n", tag, evnames(poll_now(u)));
	close(u);

	int a = udp_bound(family, &aa, &al), b = udp_bound(family, &ba, &bl);
	CHECK(a >= 0 && b >= 0 && is_loopback(&aa) && port_of(&aa) != 0 && port_of(&aa) != port_of(&ba), T("two sockets bound to loopback ports"));
	CHECK(sendto(a, "hello", 5, 0, (struct sockaddr *)&ba, bl) == 5, T("sendto"));
	CHECK(wait_fd(b, POLLIN, 5000) == POLLIN, T("poll: receiver readable"));
	v = -1;
	CHECK(ioctl(b, FIONREAD, &v) == 0 && v == 5, T("FIONREAD 5"));
	fl = sizeof from;
	memset(&from, 0, sizeof from);
	memset(buf, 0, sizeof buf);
	CHECK(recvfrom(b, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl) == 5 && memcmp(buf, "hello", 5) == 0, T("recvfrom"));
	CHECK(fl == al && same_addr(&from, &aa), T("recvfrom names the sender"));
	CHECK_ERR(recv(b, buf, sizeof buf, MSG_DONTWAIT), EAGAIN, T("MSG_DONTWAIT on empty"));
	printf("%s: bound socket polls: %s\n", tag, evnames(poll_now(b)));

	/* Datagram boundaries, MSG_PEEK, FIONREAD of the first datagram. */
	CHECK(sendto(a, "one", 3, 0, (struct sockaddr *)&ba, bl) == 3 && sendto(a, "three", 5, 0, (struct sockaddr *)&ba, bl) == 5, T("two datagrams"));
	CHECK(wait_fd(b, POLLIN, 5000) == POLLIN, T("readable"));
	v = -1;
	CHECK(ioctl(b, FIONREAD, &v) == 0 && v == 3, T("FIONREAD is the first datagram's size"));
	memset(buf, 0, sizeof buf);
	fl = sizeof from;
	CHECK(recvfrom(b, buf, sizeof buf, MSG_PEEK, (struct sockaddr *)&from, &fl) == 3 && memcmp(buf, "one", 3) == 0 && same_addr(&from, &aa), T("MSG_PEEK with the sender"));
	CHECK(recv(b, buf, sizeof buf, 0) == 3 && memcmp(buf, "one", 3) == 0, T("first datagram alone"));
	memset(buf, 0, sizeof buf);
	CHECK(recv_wait(b, buf, sizeof buf, 0) == 5 && memcmp(buf, "three", 5) == 0, T("second datagram alone"));

	/* MSG_TRUNC. */
	CHECK(sendto(a, "0123456789", 10, 0, (struct sockaddr *)&ba, bl) == 10, T("10-byte datagram"));
	memset(buf, 0, sizeof buf);
	CHECK(recv_wait(b, buf, 4, 0) == 4 && memcmp(buf, "0123", 4) == 0, T("short read takes 4 bytes"));
	CHECK_ERR(recv(b, buf, sizeof buf, MSG_DONTWAIT), EAGAIN, T("the rest of the datagram is gone"));
	CHECK(sendto(a, "0123456789", 10, 0, (struct sockaddr *)&ba, bl) == 10, T("again"));
	CHECK(recv_wait(b, buf, 4, MSG_TRUNC | MSG_PEEK) == 10, T("MSG_TRUNC|MSG_PEEK returns the real length"));
	CHECK(recv(b, buf, 4, MSG_TRUNC) == 10, T("MSG_TRUNC returns the real length"));
	CHECK(sendto(a, "0123456789", 10, 0, (struct sockaddr *)&ba, bl) == 10, T("and again"));
	{
		struct iovec iov = { buf, 6 };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
		CHECK(wait_fd(b, POLLIN, 5000) && recvmsg(b, &m, 0) == 6 && (m.msg_flags & MSG_TRUNC), T("recvmsg sets MSG_TRUNC in msg_flags"));
	}

	/* An empty datagram. */
	CHECK(sendto(a, "", 0, 0, (struct sockaddr *)&ba, bl) == 0, T("empty datagram"));
	CHECK(wait_fd(b, POLLIN, 5000) == POLLIN, T("an empty datagram makes the socket readable"));
	v = -1;
	CHECK(ioctl(b, FIONREAD, &v) == 0 && v == 0, T("FIONREAD 0"));
	CHECK(recv(b, buf, sizeof buf, MSG_DONTWAIT) == 0, T("recv returns 0"));
	CHECK_ERR(recv(b, buf, sizeof buf, MSG_DONTWAIT), EAGAIN, T("and it is consumed"));

	/* From an unbound socket: autobind. */
	u = socket(family, SOCK_DGRAM, 0);
	CHECK(sendto(u, "auto", 4, 0, (struct sockaddr *)&ba, bl) == 4, T("sendto from an unbound socket"));
	l = sizeof x;
	CHECK(getsockname(u, (struct sockaddr *)&x, &l) == 0 && port_of(&x) != 0, T("the sender got a port"));
	fl = sizeof from;
	CHECK(wait_fd(b, POLLIN, 5000) && recvfrom(b, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl) == 4 && port_of(&from) == port_of(&x), T("the receiver sees that port"));
	close(u);

	/* SO_RCVTIMEO. */
	{
		struct timeval tv = { 0, 100000 };
		CHECK(setsockopt(b, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0, T("SO_RCVTIMEO 100 ms"));
		CHECK_ERR(recv(b, buf, sizeof buf, 0), EAGAIN, T("recv times out"));
		tv.tv_usec = 0;
		setsockopt(b, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	}

	/* Connected UDP. */
	CHECK(connect(a, (struct sockaddr *)&ba, bl) == 0, T("connect"));
	l = sizeof x;
	CHECK(getpeername(a, (struct sockaddr *)&x, &l) == 0 && l == bl && same_addr(&x, &ba), T("getpeername"));
	CHECK(send(a, "conn", 4, 0) == 4, T("send without an address"));
	fl = sizeof from;
	CHECK(wait_fd(b, POLLIN, 5000) && recvfrom(b, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl) == 4 && same_addr(&from, &aa), T("arrives from a"));
	{
		struct sockaddr_storage ca;
		socklen_t cl;
		int c = udp_bound(family, &ca, &cl);
		CHECK(sendto(c, "from c", 6, 0, (struct sockaddr *)&aa, al) == 6, T("a third socket sends to the connected one"));
		CHECK(sendto(b, "from b", 6, 0, (struct sockaddr *)&aa, al) == 6, T("its peer sends too"));
		memset(buf, 0, sizeof buf);
		CHECK(recv_wait(a, buf, sizeof buf, 0) == 6 && memcmp(buf, "from b", 6) == 0, T("only the peer's datagram arrives"));
		CHECK_ERR(recv(a, buf, sizeof buf, MSG_DONTWAIT), EAGAIN, T("the other was filtered"));
		CHECK(sendto(a, "other", 5, 0, (struct sockaddr *)&ca, cl) == 5, T("sendto another address on a connected socket"));
		CHECK(recv_wait(c, buf, sizeof buf, 0) == 5, T("it arrives"));
		close(c);
	}
	CHECK(connect(a, (struct sockaddr *)&ba, bl) == 0, T("connect again"));
	{
		struct sockaddr unspec = { .sa_family = AF_UNSPEC };
		CHECK(connect(a, &unspec, sizeof unspec) == 0, T("connect AF_UNSPEC dissolves the association"));
		l = sizeof x;
		CHECK_ERR(getpeername(a, (struct sockaddr *)&x, &l), ENOTCONN, T("getpeername after AF_UNSPEC"));
		l = sizeof x;
		CHECK(getsockname(a, (struct sockaddr *)&x, &l) == 0 && is_loopback(&x), T("the bound address stays"));
		printf("%s: port after AF_UNSPEC of a socket bound to port 0: %s\n", tag, port_of(&x) == 0 ? "0" : port_of(&x) == port_of(&aa) ? "same" : "other");
		CHECK_ERR(send(a, "x", 1, 0), EDESTADDRREQ, T("send after AF_UNSPEC"));
		l = sizeof x;
		CHECK(getsockname(a, (struct sockaddr *)&x, &l) == 0 && is_loopback(&x) && port_of(&x) != 0, T("which binds a port again"));
	}
	close(a);
	close(b);
#undef T
}

/* ICMP port unreachable: reported to connected sockets only. */
static void refused(int family, const char *tag)
{
	struct sockaddr_storage ha, da;
	socklen_t hl, dl;
	char buf[16], what[160];
#define T(s) (snprintf(what, sizeof what, "%s: %s", tag, s), what)
	/* The hole keeps its port but takes datagrams only from itself: others draw port unreachable. */
	int hole = udp_bound(family, &ha, &hl);
	CHECK(hole >= 0 && connect(hole, (struct sockaddr *)&ha, hl) == 0, T("a socket connected to itself"));
	int c = socket(family, SOCK_DGRAM, 0);
	CHECK(connect(c, (struct sockaddr *)&ha, hl) == 0, T("connect to the hole"));
	CHECK(send(c, "x", 1, 0) == 1, T("send succeeds"));
	CHECK(wait_fd(c, 0, 5000) == POLLERR, T("POLLERR follows"));
	printf("%s: poll after port unreachable: %s\n", tag, evnames(poll_now(c)));
	CHECK_ERR(recv(c, buf, sizeof buf, 0), ECONNREFUSED, T("recv reports ECONNREFUSED"));
	CHECK_ERR(recv(c, buf, sizeof buf, MSG_DONTWAIT), EAGAIN, T("once"));
	CHECK(send(c, "y", 1, 0) == 1 && wait_fd(c, 0, 5000) == POLLERR, T("send again, POLLERR again"));
	CHECK(geti(c, SOL_SOCKET, SO_ERROR) == ECONNREFUSED, T("SO_ERROR ECONNREFUSED"));
	CHECK(geti(c, SOL_SOCKET, SO_ERROR) == 0, T("SO_ERROR cleared"));
	CHECK(send(c, "z", 1, 0) == 1 && wait_fd(c, 0, 5000) == POLLERR, T("and again"));
	CHECK_ERR(send(c, "w", 1, 0), ECONNREFUSED, T("send reports the pending error"));
	close(c);
	int d = udp_bound(family, &da, &dl);
	CHECK(sendto(d, "x", 1, 0, (struct sockaddr *)&ha, hl) == 1, T("unconnected sendto the hole"));
	CHECK(wait_fd(d, 0, 200) == 0, T("an unconnected socket gets no error"));
	CHECK(geti(d, SOL_SOCKET, SO_ERROR) == 0, T("SO_ERROR 0 there"));
	close(d);
	close(hole);
#undef T
}

static void mmsg(void)
{
	struct sockaddr_storage aa, ba, names[4];
	socklen_t al, bl;
	int a = udp_bound(AF_INET, &aa, &al), b = udp_bound(AF_INET, &ba, &bl);
	struct iovec iov[3] = { { "A", 1 }, { "BB", 2 }, { "CCC", 3 } };
	struct mmsghdr m[4];
	memset(m, 0, sizeof m);
	for (int i = 0; i < 3; i++) {
		m[i].msg_hdr.msg_iov = &iov[i];
		m[i].msg_hdr.msg_iovlen = 1;
		m[i].msg_hdr.msg_name = &ba;
		m[i].msg_hdr.msg_namelen = bl;
	}
	CHECK(sendmmsg(a, m, 3, 0) == 3, "mmsg: sendmmsg 3");
	CHECK(m[0].msg_len == 1 && m[1].msg_len == 2 && m[2].msg_len == 3, "mmsg: msg_len of each sent message");
	char rb[4][16];
	struct iovec riov[4];
	memset(m, 0, sizeof m);
	memset(rb, 0, sizeof rb);
	for (int i = 0; i < 4; i++) {
		riov[i] = (struct iovec){ rb[i], sizeof rb[i] };
		m[i].msg_hdr.msg_iov = &riov[i];
		m[i].msg_hdr.msg_iovlen = 1;
		m[i].msg_hdr.msg_name = &names[i];
		m[i].msg_hdr.msg_namelen = sizeof names[i];
	}
	CHECK(recvmmsg(b, m, 3, 0, NULL) == 3, "mmsg: blocking recvmmsg waits for 3");
	CHECK(m[0].msg_len == 1 && m[1].msg_len == 2 && m[2].msg_len == 3 && strcmp(rb[0], "A") == 0 && strcmp(rb[1], "BB") == 0 && strcmp(rb[2], "CCC") == 0,
	      "mmsg: lengths and contents");
	CHECK(m[0].msg_hdr.msg_namelen == al && same_addr(&names[0], &aa) && same_addr(&names[2], &aa), "mmsg: sender names");
	CHECK_ERR(recvmmsg(b, m, 4, MSG_DONTWAIT, NULL), EAGAIN, "mmsg: recvmmsg on empty");
	CHECK(sendmmsg(a, m, 0, 0) == 0, "mmsg: sendmmsg of 0 messages");
	/* The second message has a bad buffer: the first is sent and counted. */
	memset(m, 0, sizeof m);
	struct iovec good = { "ok", 2 }, bad = { BADPTR, 8 };
	m[0].msg_hdr = (struct msghdr){ .msg_name = &ba, .msg_namelen = bl, .msg_iov = &good, .msg_iovlen = 1 };
	m[1].msg_hdr = (struct msghdr){ .msg_name = &ba, .msg_namelen = bl, .msg_iov = &bad, .msg_iovlen = 1 };
	CHECK(sendmmsg(a, m, 2, 0) == 1, "mmsg: sendmmsg stops at a bad message and counts the good one");
	CHECK_ERR(sendmmsg(a, &m[1], 1, 0), EFAULT, "mmsg: sendmmsg with only the bad message");
	char buf[8];
	CHECK(recv_wait(b, buf, sizeof buf, 0) == 2, "mmsg: the good one arrives");
	CHECK_ERR(recvmmsg(b, (struct mmsghdr *)BADPTR, 1, MSG_DONTWAIT, NULL), EFAULT, "mmsg: recvmmsg with a bad vector");
	close(a);
	close(b);
}

static void pktinfo(void)
{
	struct sockaddr_storage aa, ba;
	socklen_t al, bl;
	int a = udp_bound(AF_INET, &aa, &al), b = udp_bound(AF_INET, &ba, &bl);
	CHECK(seti(b, IPPROTO_IP, IP_PKTINFO, 1) == 0 && geti(b, IPPROTO_IP, IP_PKTINFO) == 1, "pktinfo: IP_PKTINFO on");
	CHECK(sendto(a, "pi", 2, 0, (struct sockaddr *)&ba, bl) == 2 && wait_fd(b, POLLIN, 5000), "pktinfo: datagram");
	char buf[8];
	union {
		char b[256];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { buf, sizeof buf };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof ctl.b };
	CHECK(recvmsg(b, &m, 0) == 2 && m.msg_flags == 0, "pktinfo: recvmsg");
	int found = 0;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm))
		if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO && cm->cmsg_len == CMSG_LEN(sizeof(struct in_pktinfo))) {
			struct in_pktinfo pi;
			memcpy(&pi, CMSG_DATA(cm), sizeof pi);
			found = pi.ipi_ifindex == 1 && pi.ipi_addr.s_addr == htonl(INADDR_LOOPBACK) && pi.ipi_spec_dst.s_addr == htonl(INADDR_LOOPBACK);
		}
	CHECK(found, "pktinfo: ifindex 1 (lo), destination 127.0.0.1");
	/* A control buffer too small for it. */
	CHECK(sendto(a, "pi", 2, 0, (struct sockaddr *)&ba, bl) == 2 && wait_fd(b, POLLIN, 5000), "pktinfo: another datagram");
	m.msg_controllen = sizeof(struct cmsghdr);
	m.msg_flags = 0;
	CHECK(recvmsg(b, &m, 0) == 2 && (m.msg_flags & MSG_CTRUNC), "pktinfo: MSG_CTRUNC with a small control buffer");
	close(a);
	close(b);
}

static void limits_and_bad(void)
{
	struct sockaddr_storage aa, ba, x;
	socklen_t al, bl, l;
	int a = udp_bound(AF_INET, &aa, &al), b = udp_bound(AF_INET, &ba, &bl);
	char *big = calloc(1, 70000);
	CHECK(sendto(a, big, 65507, 0, (struct sockaddr *)&ba, bl) == 65507, "limits: 65507-byte datagram");
	CHECK(recv_wait(b, big, 70000, 0) == 65507, "limits: received whole");
	CHECK_ERR(sendto(a, big, 65508, 0, (struct sockaddr *)&ba, bl), EMSGSIZE, "limits: 65508 bytes");
	CHECK_ERR(sendto(a, "x", 1, 0, (struct sockaddr *)&ba, 3), EINVAL, "bad: sendto with addrlen 3");
	CHECK_ERR(sendto(a, "x", 1, 0, (struct sockaddr *)&ba, 200), EINVAL, "bad: sendto with addrlen 200");
	loop_addr(AF_INET6, &x, port_of(&ba));
	CHECK_ERR(sendto(a, "x", 1, 0, (struct sockaddr *)&x, sizeof(struct sockaddr_in6)), EAFNOSUPPORT, "bad: sendto an AF_INET6 address from AF_INET");
	CHECK_ERR(sendto(a, BADPTR, 1, 0, (struct sockaddr *)&ba, bl), EFAULT, "bad: sendto a bad buffer");
	CHECK_ERR(sendto(a, "x", 1, 0, (struct sockaddr *)BADPTR, bl), EFAULT, "bad: sendto a bad address pointer");
	CHECK(sendto(a, "abcd", 4, 0, (struct sockaddr *)&ba, bl) == 4 && wait_fd(b, POLLIN, 5000), "bad: a datagram for the bad recv");
	CHECK_ERR(recv(b, BADPTR, 4, 0), EFAULT, "bad: recv into a bad buffer");
	l = 4;
	CHECK(sendto(a, "abcd", 4, 0, (struct sockaddr *)&ba, bl) == 4 && wait_fd(b, POLLIN, 5000) && recvfrom(b, big, 16, 0, (struct sockaddr *)&x, &l) == 4 && l == al,
	      "bad: recvfrom with a short name buffer reports the full length");
	CHECK(sendto(a, "abcd", 4, 0, (struct sockaddr *)&ba, bl) == 4 && wait_fd(b, POLLIN, 5000), "bad: a datagram for the bad name");
	l = sizeof x;
	CHECK_ERR(recvfrom(b, big, 16, 0, (struct sockaddr *)&x, (socklen_t *)BADPTR + 1), EFAULT, "bad: recvfrom with a bad length pointer");
	CHECK_ERR(socket(AF_INET, SOCK_DGRAM, IPPROTO_TCP), EPROTONOSUPPORT, "bad: socket(AF_INET, SOCK_DGRAM, IPPROTO_TCP)");
	CHECK_ERR(socket(AF_INET6, SOCK_DGRAM, IPPROTO_TCP), EPROTONOSUPPORT, "bad: socket(AF_INET6, SOCK_DGRAM, IPPROTO_TCP)");
	int u = socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP);
	CHECK(u >= 0 && geti(u, SOL_SOCKET, SO_PROTOCOL) == IPPROTO_UDP, "socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP)");
	close(u);
	free(big);
	close(a);
	close(b);
}

/* A dual-stack socket sees IPv4 senders as ::ffff:a.b.c.d; a v6-only one cannot be reached from IPv4. */
static void dual_stack(void)
{
	int s = socket(AF_INET6, SOCK_DGRAM, 0);
	struct sockaddr_in6 any = { .sin6_family = AF_INET6, .sin6_addr = in6addr_any }, a6, from;
	socklen_t l = sizeof a6;
	CHECK(bind(s, (struct sockaddr *)&any, sizeof any) == 0 && getsockname(s, (struct sockaddr *)&a6, &l) == 0, "dual: bind [::]:0");
	int c = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = a6.sin6_port, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	CHECK(sendto(c, "v4", 2, 0, (struct sockaddr *)&to, sizeof to) == 2, "dual: IPv4 sendto");
	char buf[8];
	l = sizeof from;
	CHECK(wait_fd(s, POLLIN, 5000) && recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)&from, &l) == 2 && l == sizeof from &&
		      from.sin6_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&from.sin6_addr),
	      "dual: the sender is v4-mapped");
	CHECK(sendto(s, "back", 4, 0, (struct sockaddr *)&from, l) == 4 && wait_fd(c, POLLIN, 5000) && recv(c, buf, sizeof buf, 0) == 4, "dual: reply to the v4-mapped address");
	close(s);
	s = socket(AF_INET6, SOCK_DGRAM, 0);
	CHECK(seti(s, IPPROTO_IPV6, IPV6_V6ONLY, 1) == 0, "dual: IPV6_V6ONLY");
	l = sizeof a6;
	CHECK(bind(s, (struct sockaddr *)&any, sizeof any) == 0 && getsockname(s, (struct sockaddr *)&a6, &l) == 0, "dual: bind v6-only [::]:0");
	CHECK_ERR(sendto(s, "x", 1, 0, (struct sockaddr *)&from, sizeof from), ENETUNREACH, "dual: v6-only socket sends to a v4-mapped address");
	close(s);
	close(c);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	basics(AF_INET, "v4");
	basics(AF_INET6, "v6");
	refused(AF_INET, "refused v4");
	refused(AF_INET6, "refused v6");
	mmsg();
	pktinfo();
	limits_and_bad();
	dual_stack();
	return finish();
}
