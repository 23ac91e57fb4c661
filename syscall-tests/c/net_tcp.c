/* Checks TCP over loopback (IPv4 and IPv6): bad socket()/bind()/connect() arguments, bind/listen/connect/accept in one process and with fork, names of both ends, EADDRINUSE and SO_REUSEADDR over TIME_WAIT, the listen backlog, blocking and non-blocking connect (EINPROGRESS, POLLOUT, SO_ERROR, ECONNREFUSED), MSG_PEEK/MSG_DONTWAIT/MSG_WAITALL (1 MiB from a child), FIONREAD, socket options, SO_RCVTIMEO, shutdown, EPIPE with and without SIGPIPE, ECONNRESET, select/poll/epoll readiness, accept4 flags, EINTR without SA_RESTART, IPV6_V6ONLY and v4-mapped peers, EFAULT on bad pointers. Ports are ephemeral and never printed. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
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

/* A listening socket on the loopback address, port 0; its name goes to *addr. */
static int listener(int family, int backlog, struct sockaddr_storage *addr, socklen_t *len)
{
	int s = socket(family, SOCK_STREAM, 0);
	if (s < 0)
		return -1;
	*len = loop_addr(family, addr, 0);
	if (bind(s, (struct sockaddr *)addr, *len) != 0 || listen(s, backlog) != 0) {
		close(s);
		return -1;
	}
	*len = sizeof *addr;
	if (getsockname(s, (struct sockaddr *)addr, len) != 0) {
		close(s);
		return -1;
	}
	return s;
}

static int connect_to(const struct sockaddr_storage *a, socklen_t len, int flags)
{
	int c = socket(a->ss_family, SOCK_STREAM | flags, 0);
	if (c < 0)
		return -1;
	if (connect(c, (const struct sockaddr *)a, len) != 0) {
		close(c);
		return -1;
	}
	return c;
}

/* A connected pair over loopback: *client and *server (accepted). */
static int tcp_pair(int family, int *client, int *server)
{
	struct sockaddr_storage a;
	socklen_t al;
	int ls = listener(family, 4, &a, &al);
	if (ls < 0)
		return -1;
	*client = connect_to(&a, al, 0);
	*server = *client >= 0 ? accept(ls, NULL, NULL) : -1;
	close(ls);
	return *client >= 0 && *server >= 0 ? 0 : -1;
}

static volatile sig_atomic_t sigpipes, sigusr1s;
static void on_sigpipe(int s)
{
	(void)s;
	sigpipes++;
}
static void on_sigusr1(int s)
{
	(void)s;
	sigusr1s++;
}

#define XFER (1u << 20)
static unsigned char pattern(size_t i)
{
	return (unsigned char)((i * 2654435761u) >> 13);
}

static void bad_arguments(void)
{
	struct sockaddr_storage ss;
	struct sockaddr_in sin;
	socklen_t l;
	int s, v;

	CHECK_ERR(socket(AF_INET, SOCK_STREAM, IPPROTO_UDP), EPROTONOSUPPORT, "socket(AF_INET, SOCK_STREAM, IPPROTO_UDP)");
	CHECK_ERR(socket(AF_INET, SOCK_DGRAM, IPPROTO_TCP), EPROTONOSUPPORT, "socket(AF_INET, SOCK_DGRAM, IPPROTO_TCP)");
	CHECK_ERR(socket(AF_INET6, SOCK_STREAM, IPPROTO_UDP), EPROTONOSUPPORT, "socket(AF_INET6, SOCK_STREAM, IPPROTO_UDP)");
	CHECK_ERR(socket(12345, SOCK_STREAM, 0), EAFNOSUPPORT, "socket(12345, SOCK_STREAM, 0)");
	CHECK_ERR(socket(AF_INET, 99, 0), EINVAL, "socket(AF_INET, 99, 0)");
	CHECK_ERR(socket(AF_INET, SOCK_STREAM | 0x40000000, 0), EINVAL, "socket with an unknown type flag");
	s = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
	CHECK(s >= 0, "socket(AF_INET, SOCK_STREAM, IPPROTO_TCP)");

	/* bind */
	CHECK_ERR(bind(s, (struct sockaddr *)&ss, 3), EINVAL, "bind with addrlen 3");
	loop_addr(AF_INET, &ss, 0);
	CHECK_ERR(bind(s, (struct sockaddr *)&ss, sizeof(struct sockaddr_in) - 1), EINVAL, "bind with addrlen 15");
	CHECK_ERR(bind(s, (struct sockaddr *)&ss, 200), EINVAL, "bind with addrlen 200");
	CHECK_ERR(bind(s, (struct sockaddr *)BADPTR, sizeof sin), EFAULT, "bind with a bad pointer");
	loop_addr(AF_INET6, &ss, 0);
	CHECK_ERR(bind(s, (struct sockaddr *)&ss, sizeof(struct sockaddr_in6)), EAFNOSUPPORT, "bind AF_INET socket to an AF_INET6 address");
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = inet_addr("203.0.113.77"); /* TEST-NET-3: not on this host */
	CHECK_ERR(bind(s, (struct sockaddr *)&sin, sizeof sin), EADDRNOTAVAIL, "bind to a non-local address");

	/* connect */
	loop_addr(AF_INET, &ss, htons(1));
	CHECK_ERR(connect(s, (struct sockaddr *)&ss, 3), EINVAL, "connect with addrlen 3");
	CHECK_ERR(connect(s, (struct sockaddr *)&ss, 129), EINVAL, "connect with addrlen 129");
	CHECK_ERR(connect(s, (struct sockaddr *)BADPTR, sizeof sin), EFAULT, "connect with a bad pointer");
	memset(&ss, 0x5a, sizeof ss);
	CHECK_ERR(connect(s, (struct sockaddr *)&ss, sizeof ss), EAFNOSUPPORT, "connect to a garbage sockaddr");
	loop_addr(AF_INET6, &ss, htons(1));
	CHECK_ERR(connect(s, (struct sockaddr *)&ss, sizeof(struct sockaddr_in6)), EAFNOSUPPORT, "connect AF_INET socket to an AF_INET6 address");

	/* An unconnected socket. */
	char buf[8];
	CHECK_ERR(recv(s, buf, sizeof buf, 0), ENOTCONN, "recv on an unconnected socket");
	CHECK_ERR(send(s, "x", 1, MSG_NOSIGNAL), EPIPE, "send on an unconnected socket");
	l = sizeof ss;
	CHECK_ERR(getpeername(s, (struct sockaddr *)&ss, &l), ENOTCONN, "getpeername unconnected");
	CHECK_ERR(shutdown(s, SHUT_RDWR), ENOTCONN, "shutdown unconnected");
	CHECK_ERR(accept(s, NULL, NULL), EINVAL, "accept on a non-listening socket");
	l = sizeof ss;
	memset(&ss, 0xff, sizeof ss);
	CHECK(getsockname(s, (struct sockaddr *)&ss, &l) == 0 && l == sizeof(struct sockaddr_in) && ss.ss_family == AF_INET &&
		      port_of(&ss) == 0 && ((struct sockaddr_in *)&ss)->sin_addr.s_addr == 0,
	      "getsockname unbound: 0.0.0.0 port 0");
	l = 4;
	CHECK(getsockname(s, (struct sockaddr *)&ss, &l) == 0 && l == sizeof(struct sockaddr_in), "getsockname with a short buffer reports the full length");
	CHECK_ERR(getsockname(s, (struct sockaddr *)&ss, (socklen_t *)BADPTR), EFAULT, "getsockname with a bad length pointer");

	/* getsockopt/setsockopt */
	CHECK_ERR(getsockopt(s, SOL_SOCKET, SO_TYPE, &v, (socklen_t *)BADPTR), EFAULT, "getsockopt with a bad optlen pointer");
	l = sizeof v;
	CHECK_ERR(getsockopt(s, SOL_SOCKET, SO_TYPE, BADPTR, &l), EFAULT, "getsockopt with a bad optval pointer");
	l = (socklen_t)-1;
	CHECK_ERR(getsockopt(s, SOL_SOCKET, SO_TYPE, &v, &l), EINVAL, "getsockopt with a negative optlen");
	l = sizeof v;
	CHECK_ERR(getsockopt(s, SOL_SOCKET, 9999, &v, &l), ENOPROTOOPT, "getsockopt unknown SOL_SOCKET option");
	l = sizeof v;
	CHECK_ERR(getsockopt(s, IPPROTO_TCP, 9999, &v, &l), ENOPROTOOPT, "getsockopt unknown IPPROTO_TCP option");
	CHECK_ERR(setsockopt(s, IPPROTO_TCP, TCP_NODELAY, BADPTR, sizeof v), EFAULT, "setsockopt with a bad optval pointer");
	CHECK_ERR(setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &v, 2), EINVAL, "setsockopt TCP_NODELAY with optlen 2");
	CHECK_ERR(setsockopt(s, SOL_SOCKET, SO_TYPE, &v, sizeof v), ENOPROTOOPT, "setsockopt SO_TYPE");

	/* sendmsg/recvmsg with bad pointers (on a connected pair, so the pointers are reached). */
	int c, sv;
	CHECK(tcp_pair(AF_INET, &c, &sv) == 0, "pair for EFAULT checks");
	struct msghdr m;
	memset(&m, 0, sizeof m);
	m.msg_iov = (struct iovec *)BADPTR;
	m.msg_iovlen = 1;
	CHECK_ERR(sendmsg(c, &m, MSG_NOSIGNAL), EFAULT, "sendmsg with a bad iovec pointer");
	struct iovec iov = { BADPTR, 4 };
	m.msg_iov = &iov;
	CHECK_ERR(sendmsg(c, &m, MSG_NOSIGNAL), EFAULT, "sendmsg with a bad iov_base");
	CHECK_ERR(sendmsg(c, (struct msghdr *)BADPTR, 0), EFAULT, "sendmsg with a bad msghdr pointer");
	CHECK_ERR(send(c, BADPTR, 4, MSG_NOSIGNAL), EFAULT, "send with a bad buffer");
	m.msg_iovlen = 1025;
	CHECK_ERR(sendmsg(c, &m, MSG_NOSIGNAL), EMSGSIZE, "sendmsg with 1025 iovecs");
	CHECK(send(c, "data", 4, 0) == 4 && (wait_fd(sv, POLLIN, 5000) & POLLIN), "data for the bad recv");
	CHECK_ERR(recv(sv, BADPTR, 4, 0), EFAULT, "recv into a bad buffer");
	memset(buf, 0, sizeof buf);
	CHECK(recv(sv, buf, sizeof buf, MSG_DONTWAIT) == 4 && memcmp(buf, "data", 4) == 0, "the data is still there after EFAULT");
	close(c);
	close(sv);
	close(s);
}

static void one_process(int family, const char *tag)
{
	struct sockaddr_storage la, ca, pa, x;
	socklen_t lal, l;
	char buf[256], what[160];
	int v;

#define T(s) (snprintf(what, sizeof what, "%s: %s", tag, s), what)
	int ls = socket(family, SOCK_STREAM, 0);
	CHECK(ls >= 0, T("socket"));
	CHECK(geti(ls, SOL_SOCKET, SO_TYPE) == SOCK_STREAM, T("SO_TYPE is SOCK_STREAM"));
	CHECK(geti(ls, SOL_SOCKET, SO_DOMAIN) == family, T("SO_DOMAIN"));
	CHECK(geti(ls, SOL_SOCKET, SO_PROTOCOL) == IPPROTO_TCP, T("SO_PROTOCOL is IPPROTO_TCP"));
	CHECK(geti(ls, SOL_SOCKET, SO_ACCEPTCONN) == 0, T("SO_ACCEPTCONN 0 before listen"));
	CHECK(geti(ls, SOL_SOCKET, SO_ERROR) == 0, T("SO_ERROR 0"));
	{
		int t = socket(family, SOCK_STREAM, 0);
		l = sizeof x;
		CHECK(listen(t, 1) == 0 && getsockname(t, (struct sockaddr *)&x, &l) == 0 && port_of(&x) != 0 && !is_loopback(&x),
		      T("listen on an unbound socket binds the wildcard address and a port"));
		close(t);
	}
	lal = loop_addr(family, &la, 0);
	CHECK(bind(ls, (struct sockaddr *)&la, lal) == 0, T("bind loopback port 0"));
	CHECK_ERR(bind(ls, (struct sockaddr *)&la, lal), EINVAL, T("bind twice"));
	l = sizeof la;
	CHECK(getsockname(ls, (struct sockaddr *)&la, &l) == 0 && l == lal && la.ss_family == family && port_of(&la) != 0 && is_loopback(&la),
	      T("getsockname: loopback, ephemeral port"));
	CHECK(listen(ls, 8) == 0, T("listen"));
	CHECK(listen(ls, 16) == 0, T("listen again changes the backlog"));
	CHECK(geti(ls, SOL_SOCKET, SO_ACCEPTCONN) == 1, T("SO_ACCEPTCONN 1 after listen"));
	printf("%s: listener poll before a client: %s\n", tag, evnames(poll_now(ls)));
	CHECK(fcntl(ls, F_SETFL, O_NONBLOCK) == 0, T("listener O_NONBLOCK"));
	CHECK_ERR(accept(ls, NULL, NULL), EAGAIN, T("accept with no client"));
	CHECK(fcntl(ls, F_SETFL, 0) == 0, T("listener blocking again"));

	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = 7 }, got[4];
	CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev) == 0, T("epoll_ctl ADD listener"));
	CHECK(epoll_wait(ep, got, 4, 0) == 0, T("epoll: listener not ready"));

	int c = socket(family, SOCK_STREAM, 0);
	CHECK(connect(c, (struct sockaddr *)&la, lal) == 0, T("blocking connect"));
	CHECK_ERR(connect(c, (struct sockaddr *)&la, lal), EISCONN, T("connect twice"));
	CHECK(epoll_wait(ep, got, 4, 5000) == 1 && got[0].events == EPOLLIN && got[0].data.u32 == 7, T("epoll: EPOLLIN on the listener"));
	printf("%s: listener poll with a pending client: %s\n", tag, evnames(poll_now(ls)));
	{
		fd_set r;
		FD_ZERO(&r);
		FD_SET(ls, &r);
		struct timeval tv = { 5, 0 };
		CHECK(select(ls + 1, &r, NULL, NULL, &tv) == 1 && FD_ISSET(ls, &r), T("select: listener readable"));
	}
	l = sizeof pa;
	memset(&pa, 0, sizeof pa);
	int s = accept4(ls, (struct sockaddr *)&pa, &l, SOCK_CLOEXEC | SOCK_NONBLOCK);
	CHECK(s >= 0, T("accept4"));
	CHECK((fcntl(s, F_GETFD) & FD_CLOEXEC) && (fcntl(s, F_GETFL) & O_NONBLOCK), T("accept4 SOCK_CLOEXEC|SOCK_NONBLOCK visible via fcntl"));
	CHECK(!(fcntl(ls, F_GETFL) & O_NONBLOCK), T("the listener stays blocking"));
	CHECK(epoll_wait(ep, got, 4, 0) == 0, T("epoll: listener drained"));
	CHECK(l == lal && pa.ss_family == family, T("accept returns the peer's family and length"));
	l = sizeof ca;
	CHECK(getsockname(c, (struct sockaddr *)&ca, &l) == 0 && l == lal && is_loopback(&ca) && port_of(&ca) != 0, T("client getsockname: loopback, ephemeral port"));
	CHECK(same_addr(&ca, &pa), T("accepted peer address == client's getsockname"));
	l = sizeof x;
	CHECK(getpeername(c, (struct sockaddr *)&x, &l) == 0 && l == lal && same_addr(&x, &la), T("client getpeername == listener's name"));
	l = sizeof x;
	CHECK(getsockname(s, (struct sockaddr *)&x, &l) == 0 && same_addr(&x, &la), T("accepted socket's getsockname == listener's name"));
	l = sizeof x;
	CHECK(getpeername(s, (struct sockaddr *)&x, &l) == 0 && same_addr(&x, &ca), T("accepted socket's getpeername == client's name"));
	CHECK(port_of(&ca) != port_of(&la), T("client and server ports differ"));
	CHECK(geti(s, SOL_SOCKET, SO_ACCEPTCONN) == 0, T("SO_ACCEPTCONN 0 on the accepted socket"));
	CHECK(geti(s, SOL_SOCKET, SO_PROTOCOL) == IPPROTO_TCP && geti(s, SOL_SOCKET, SO_DOMAIN) == family, T("accepted SO_PROTOCOL/SO_DOMAIN"));
	CHECK_ERR(listen(c, 1), EINVAL, T("listen on a connected socket"));

	/* Data. */
	printf("%s: fresh connection polls: client %s", tag, evnames(poll_now(c)));
	printf(", server %s\n", evnames(poll_now(s)));
	CHECK(send(c, "hello", 5, 0) == 5, T("send"));
	CHECK(wait_fd(s, POLLIN, 5000) == POLLIN, T("poll: server readable"));
	v = -1;
	CHECK(ioctl(s, FIONREAD, &v) == 0 && v == 5, T("FIONREAD 5"));
	memset(buf, 0, sizeof buf);
	CHECK(recv(s, buf, 3, MSG_PEEK) == 3 && memcmp(buf, "hel", 3) == 0, T("MSG_PEEK"));
	memset(buf, 0, sizeof buf);
	CHECK(recv(s, buf, sizeof buf, 0) == 5 && memcmp(buf, "hello", 5) == 0, T("recv gets the peeked data"));
	CHECK_ERR(recv(s, buf, sizeof buf, 0), EAGAIN, T("recv on the empty non-blocking socket"));
	CHECK_ERR(recv(c, buf, sizeof buf, MSG_DONTWAIT), EAGAIN, T("MSG_DONTWAIT on empty"));
	CHECK(write(s, "abc", 3) == 3 && write(s, "defg", 4) == 4, T("two writes back"));
	CHECK(wait_fd(c, POLLIN, 5000) & POLLIN, T("client readable"));
	for (int i = 0; i < 100; i++) { /* the second segment may trail the first */
		v = 0;
		if (ioctl(c, FIONREAD, &v) != 0 || v >= 7)
			break;
		usleep(10000);
	}
	CHECK(v == 7, T("FIONREAD counts both writes"));
	memset(buf, 0, sizeof buf);
	CHECK(recv(c, buf, sizeof buf, MSG_DONTWAIT) == 7 && memcmp(buf, "abcdefg", 7) == 0, T("one read glues the stream"));
	{
		struct iovec iov[3] = { { "one ", 4 }, { "two ", 4 }, { "three", 5 } };
		CHECK(writev(c, iov, 3) == 13, T("writev"));
		char a[5] = { 0 }, b[20] = { 0 };
		struct iovec riov[2] = { { a, 4 }, { b, 9 } };
		struct msghdr m = { .msg_iov = riov, .msg_iovlen = 2 };
		CHECK(wait_fd(s, POLLIN, 5000) & POLLIN, T("readable after writev"));
		CHECK(recvmsg(s, &m, MSG_WAITALL) == 13 && memcmp(a, "one ", 4) == 0 && memcmp(b, "two three", 9) == 0 && m.msg_flags == 0, T("recvmsg into two iovecs"));
	}
	{
		fd_set r, w;
		FD_ZERO(&r);
		FD_ZERO(&w);
		FD_SET(c, &r);
		FD_SET(c, &w);
		struct timeval tv = { 0, 0 };
		CHECK(select(c + 1, &r, &w, NULL, &tv) == 1 && !FD_ISSET(c, &r) && FD_ISSET(c, &w), T("select: connected socket writable, not readable"));
	}
	{
		int ep2 = epoll_create1(0);
		struct epoll_event e = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP, .data.u32 = 1 };
		CHECK(epoll_ctl(ep2, EPOLL_CTL_ADD, c, &e) == 0, T("epoll add connected socket"));
		CHECK(epoll_wait(ep2, got, 4, 0) == 1 && got[0].events == EPOLLOUT, T("epoll: EPOLLOUT on a connected socket"));
		close(ep2);
	}

	/* Options. */
	CHECK(geti(c, IPPROTO_TCP, TCP_NODELAY) == 0, T("TCP_NODELAY default 0"));
	CHECK(seti(c, IPPROTO_TCP, TCP_NODELAY, 1) == 0 && geti(c, IPPROTO_TCP, TCP_NODELAY) == 1, T("TCP_NODELAY set to 1"));
	CHECK(seti(c, IPPROTO_TCP, TCP_NODELAY, 0) == 0 && geti(c, IPPROTO_TCP, TCP_NODELAY) == 0, T("TCP_NODELAY back to 0"));
	CHECK(geti(c, SOL_SOCKET, SO_KEEPALIVE) == 0, T("SO_KEEPALIVE default 0"));
	CHECK(seti(c, SOL_SOCKET, SO_KEEPALIVE, 1) == 0 && geti(c, SOL_SOCKET, SO_KEEPALIVE) == 1, T("SO_KEEPALIVE set"));
	CHECK(seti(c, SOL_SOCKET, SO_KEEPALIVE, 5) == 0 && geti(c, SOL_SOCKET, SO_KEEPALIVE) == 1, T("SO_KEEPALIVE reads back as a boolean"));
	CHECK(geti(c, SOL_SOCKET, SO_REUSEADDR) == 0, T("SO_REUSEADDR default 0"));
	CHECK(seti(c, SOL_SOCKET, SO_REUSEADDR, 1) == 0 && geti(c, SOL_SOCKET, SO_REUSEADDR) == 1, T("SO_REUSEADDR set"));
	CHECK(geti(c, SOL_SOCKET, SO_SNDBUF) > 0 && geti(c, SOL_SOCKET, SO_RCVBUF) > 0, T("SO_SNDBUF/SO_RCVBUF positive"));
	{
		struct timeval tv = { 0, 100000 };
		CHECK(setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0, T("set SO_RCVTIMEO 100 ms"));
		memset(&tv, 0, sizeof tv);
		l = sizeof tv;
		CHECK(getsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, &l) == 0 && l == sizeof tv && tv.tv_sec == 0 && tv.tv_usec == 100000, T("SO_RCVTIMEO reads back"));
		CHECK_ERR(recv(c, buf, 1, 0), EAGAIN, T("recv times out"));
		CHECK_ERR(accept(c, NULL, NULL), EINVAL, T("accept on a connected socket"));
		tv.tv_sec = 0;
		tv.tv_usec = 0;
		CHECK(setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0, T("clear SO_RCVTIMEO"));
	}

	/* shutdown(SHUT_WR): the peer reads EOF, the other direction still works. */
	CHECK(shutdown(c, SHUT_WR) == 0, T("shutdown SHUT_WR"));
	CHECK(wait_fd(s, POLLRDHUP, 5000) & POLLRDHUP, T("server sees RDHUP"));
	printf("%s: server polls after client SHUT_WR: %s\n", tag, evnames(poll_now(s)));
	CHECK(recv(s, buf, sizeof buf, 0) == 0, T("server reads EOF"));
	CHECK(recv(s, buf, sizeof buf, 0) == 0, T("and EOF again"));
	CHECK_ERR(send(c, "x", 1, MSG_NOSIGNAL), EPIPE, T("send after SHUT_WR"));
	CHECK(send(s, "back", 4, 0) == 4, T("server still sends"));
	CHECK(wait_fd(c, POLLIN, 5000) & POLLIN, T("client readable"));
	memset(buf, 0, sizeof buf);
	CHECK(recv(c, buf, sizeof buf, 0) == 4 && memcmp(buf, "back", 4) == 0, T("client reads the other direction"));
	CHECK(shutdown(c, SHUT_WR) == 0, T("shutdown SHUT_WR twice"));
	CHECK_ERR(shutdown(c, 7), EINVAL, T("shutdown with a bad how"));
	CHECK(shutdown(s, SHUT_RDWR) == 0, T("server shutdown SHUT_RDWR"));
	CHECK(wait_fd(c, 0, 5000) & POLLHUP, T("client sees HUP"));
	printf("%s: client polls after both directions shut: %s\n", tag, evnames(poll_now(c)));
	CHECK(recv(c, buf, sizeof buf, 0) == 0, T("client reads EOF"));
	close(c);
	close(s);
	close(ep);
	close(ls);
#undef T
}

static void nonblocking_connect(void)
{
	struct sockaddr_storage la, x;
	socklen_t lal, l;
	int ls = listener(AF_INET, 4, &la, &lal);
	CHECK(ls >= 0, "nb: listener");
	int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	CHECK_ERR(connect(c, (struct sockaddr *)&la, lal), EINPROGRESS, "nb: connect");
	unsigned r = wait_fd(c, POLLOUT, 5000);
	printf("nb: poll after the handshake: %s\n", evnames(r));
	CHECK(geti(c, SOL_SOCKET, SO_ERROR) == 0, "nb: SO_ERROR 0");
	l = sizeof x;
	CHECK(getpeername(c, (struct sockaddr *)&x, &l) == 0 && same_addr(&x, &la), "nb: getpeername");
	errno = 0;
	int rc = connect(c, (struct sockaddr *)&la, lal);
	printf("nb: connect after completion: %d %s\n", rc, errname(rc ? errno : 0));
	CHECK_ERR(connect(c, (struct sockaddr *)&la, lal), EISCONN, "nb: connect once more");
	int s = accept(ls, NULL, NULL);
	CHECK(s >= 0 && send(s, "q", 1, 0) == 1, "nb: accept and send");
	char b;
	CHECK(wait_fd(c, POLLIN, 5000) && recv(c, &b, 1, 0) == 1 && b == 'q', "nb: data arrives");
	close(s);
	close(c);
	close(ls);

	/* A closed port: a bound socket that does not listen keeps the port ours. */
	struct sockaddr_storage ca;
	int hole = socket(AF_INET, SOCK_STREAM, 0);
	socklen_t cal = loop_addr(AF_INET, &ca, 0);
	CHECK(bind(hole, (struct sockaddr *)&ca, cal) == 0, "refused: bind without listen");
	l = sizeof ca;
	CHECK(getsockname(hole, (struct sockaddr *)&ca, &l) == 0, "refused: getsockname");
	c = socket(AF_INET, SOCK_STREAM, 0);
	CHECK_ERR(connect(c, (struct sockaddr *)&ca, cal), ECONNREFUSED, "refused: blocking connect");
	CHECK(geti(c, SOL_SOCKET, SO_ERROR) == 0, "refused: SO_ERROR already consumed");
	close(c);
	c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	CHECK_ERR(connect(c, (struct sockaddr *)&ca, cal), EINPROGRESS, "refused: non-blocking connect");
	CHECK(wait_fd(c, POLLOUT, 5000) & POLLOUT, "refused: poll wakes up");
	printf("refused: poll revents: %s\n", evnames(poll_now(c)));
	CHECK(geti(c, SOL_SOCKET, SO_ERROR) == ECONNREFUSED, "refused: SO_ERROR is ECONNREFUSED");
	CHECK(geti(c, SOL_SOCKET, SO_ERROR) == 0, "refused: SO_ERROR is cleared by reading it");
	errno = 0;
	rc = connect(c, (struct sockaddr *)&ca, cal);
	printf("refused: connect again: %d %s\n", rc, errname(rc ? errno : 0));
	close(c);

	/* A second refused connect, the error read by connect() instead of SO_ERROR. */
	c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	CHECK_ERR(connect(c, (struct sockaddr *)&ca, cal), EINPROGRESS, "refused 2: non-blocking connect");
	CHECK(wait_fd(c, POLLOUT, 5000) & POLLOUT, "refused 2: poll wakes up");
	CHECK_ERR(connect(c, (struct sockaddr *)&ca, cal), ECONNREFUSED, "refused 2: connect reports the error");
	close(c);
	close(hole);
}

static void addr_in_use(void)
{
	struct sockaddr_storage a, b;
	socklen_t al, l;
	int s1 = socket(AF_INET, SOCK_STREAM, 0);
	al = loop_addr(AF_INET, &a, 0);
	CHECK(bind(s1, (struct sockaddr *)&a, al) == 0, "inuse: bind");
	l = sizeof a;
	getsockname(s1, (struct sockaddr *)&a, &l);
	int s2 = socket(AF_INET, SOCK_STREAM, 0);
	CHECK_ERR(bind(s2, (struct sockaddr *)&a, al), EADDRINUSE, "inuse: bind the same port");
	CHECK(listen(s1, 1) == 0, "inuse: listen");
	CHECK(seti(s2, SOL_SOCKET, SO_REUSEADDR, 1) == 0, "inuse: SO_REUSEADDR on the second");
	CHECK_ERR(bind(s2, (struct sockaddr *)&a, al), EADDRINUSE, "inuse: SO_REUSEADDR does not share a listening port");
	struct sockaddr_in any = { .sin_family = AF_INET, .sin_port = port_of(&a), .sin_addr.s_addr = htonl(INADDR_ANY) };
	CHECK_ERR(bind(s2, (struct sockaddr *)&any, sizeof any), EADDRINUSE, "inuse: wildcard on a port bound to loopback");
	close(s2);
	close(s1);

	/* TIME_WAIT: the server closes first; its port can be bound again only with SO_REUSEADDR. */
	int ls = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(seti(ls, SOL_SOCKET, SO_REUSEADDR, 1) == 0, "timewait: SO_REUSEADDR on the listener");
	al = loop_addr(AF_INET, &a, 0);
	l = sizeof a;
	CHECK(bind(ls, (struct sockaddr *)&a, al) == 0 && listen(ls, 1) == 0 && getsockname(ls, (struct sockaddr *)&a, &l) == 0, "timewait: listener");
	int c = connect_to(&a, al, 0);
	int s = accept(ls, NULL, NULL);
	CHECK(c >= 0 && s >= 0, "timewait: connected");
	close(ls);
	close(s);
	char buf[4];
	CHECK(wait_fd(c, POLLIN, 5000) && recv(c, buf, sizeof buf, 0) == 0, "timewait: client reads EOF");
	close(c);
	usleep(50000);
	int n1 = socket(AF_INET, SOCK_STREAM, 0);
	CHECK_ERR(bind(n1, (struct sockaddr *)&a, al), EADDRINUSE, "timewait: bind without SO_REUSEADDR");
	close(n1);
	n1 = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(seti(n1, SOL_SOCKET, SO_REUSEADDR, 1) == 0, "timewait: SO_REUSEADDR");
	CHECK(bind(n1, (struct sockaddr *)&a, al) == 0 && listen(n1, 1) == 0, "timewait: bind and listen with SO_REUSEADDR");
	l = sizeof b;
	CHECK(getsockname(n1, (struct sockaddr *)&b, &l) == 0 && same_addr(&a, &b), "timewait: same port again");
	close(n1);
}

static void backlog(void)
{
	struct sockaddr_storage la;
	socklen_t lal;
	int ls = listener(AF_INET, 1, &la, &lal);
	CHECK(ls >= 0, "backlog: listen(1)");
	int c1 = connect_to(&la, lal, 0), c2 = connect_to(&la, lal, 0);
	CHECK(c1 >= 0 && c2 >= 0, "backlog: two clients connect without accept");
	int c3 = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	CHECK_ERR(connect(c3, (struct sockaddr *)&la, lal), EINPROGRESS, "backlog: third client");
	CHECK(wait_fd(c3, POLLOUT, 300) == 0, "backlog: the third waits while the queue is full");
	int s1 = accept(ls, NULL, NULL);
	CHECK(s1 >= 0, "backlog: accept one");
	CHECK(wait_fd(c3, POLLOUT, 10000) == POLLOUT && geti(c3, SOL_SOCKET, SO_ERROR) == 0, "backlog: the third gets in once there is room");
	int s2 = accept(ls, NULL, NULL), s3 = accept(ls, NULL, NULL);
	CHECK(s2 >= 0 && s3 >= 0, "backlog: accept the other two");
	CHECK(send(c3, "3", 1, 0) == 1 && send(c2, "2", 1, 0) == 1, "backlog: clients send");
	char b2 = 0, b3 = 0;
	CHECK(read_full(s2, &b2, 1) == 0 && read_full(s3, &b3, 1) == 0 && b2 == '2' && b3 == '3', "backlog: accepted in connection order");
	close(s1);
	close(s2);
	close(s3);
	close(c1);
	close(c2);
	close(c3);
	close(ls);
}

static void fork_server(void)
{
	struct sockaddr_storage la, ca;
	socklen_t lal, l;
	int ls = listener(AF_INET, 4, &la, &lal);
	CHECK(ls >= 0, "fork: listener");
	pid_t pid = xfork();
	if (pid == 0) {
		/* Server: accept, check the peer name the client announces, reply. */
		struct sockaddr_storage pa;
		socklen_t pl = sizeof pa;
		int s = accept(ls, (struct sockaddr *)&pa, &pl);
		if (s < 0)
			_exit(2);
		in_port_t announced;
		if (read_full(s, &announced, sizeof announced) != 0)
			_exit(3);
		if (announced != port_of(&pa))
			_exit(4);
		if (write_full(s, "pong from child", 15) != 0)
			_exit(5);
		char e;
		if (read(s, &e, 1) != 0) /* wait for the client's close */
			_exit(6);
		_exit(0);
	}
	close(ls);
	int c = connect_to(&la, lal, 0);
	CHECK(c >= 0, "fork: connect to the child");
	l = sizeof ca;
	getsockname(c, (struct sockaddr *)&ca, &l);
	in_port_t p = port_of(&ca);
	CHECK(write_full(c, &p, sizeof p) == 0, "fork: announce our port");
	char buf[32] = { 0 };
	CHECK(read_full(c, buf, 15) == 0 && memcmp(buf, "pong from child", 15) == 0, "fork: reply from the child");
	close(c);
	CHECK(reaped_ok(pid), "fork: server child saw our name as the peer and exited 0");

	/* 1 MiB from a child, received with one MSG_WAITALL recv. */
	ls = listener(AF_INET6, 4, &la, &lal);
	CHECK(ls >= 0, "waitall: listener on ::1");
	pid = xfork();
	if (pid == 0) {
		close(ls);
		int cc = connect_to(&la, lal, 0);
		if (cc < 0)
			_exit(2);
		unsigned char *data = malloc(XFER);
		for (size_t i = 0; i < XFER; i++)
			data[i] = pattern(i);
		size_t off = 0, sizes[] = { 1, 4095, 100000, 65536, 300000, 12345 };
		for (int si = 0; off < XFER; si++) {
			size_t n = sizes[si % 6];
			if (n > XFER - off)
				n = XFER - off;
			ssize_t w = send(cc, data + off, n, 0);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				_exit(3);
			off += (size_t)w;
		}
		char ack;
		if (read_full(cc, &ack, 1) != 0 || ack != 'k')
			_exit(4);
		_exit(0);
	}
	int s = accept(ls, NULL, NULL);
	CHECK(s >= 0, "waitall: accept the child");
	unsigned char *rb = malloc(XFER + 16);
	ssize_t r = recv(s, rb, XFER, MSG_WAITALL);
	CHECK(r == (ssize_t)XFER, "waitall: one recv returns 1 MiB");
	int inorder = 1;
	for (size_t i = 0; i < XFER; i++)
		if (rb[i] != pattern(i)) {
			inorder = 0;
			break;
		}
	CHECK(inorder, "waitall: the data is in order");
	CHECK(send(s, "k", 1, 0) == 1, "waitall: ack");
	CHECK(reaped_ok(pid), "waitall: child exit 0");
	CHECK(recv(s, rb, 16, 0) == 0, "waitall: EOF after the child exits");
	free(rb);
	close(s);
	close(ls);
}

static void peer_gone(void)
{
	int c, s;
	char buf[16];
	struct sigaction sa = { 0 };
	sa.sa_handler = on_sigpipe;
	sigaction(SIGPIPE, &sa, NULL);

	/* Peer closed: the first send goes out and draws a reset, then EPIPE. */
	CHECK(tcp_pair(AF_INET, &c, &s) == 0, "epipe: pair");
	close(s);
	CHECK(wait_fd(c, POLLRDHUP, 5000) & POLLRDHUP, "epipe: FIN arrives");
	printf("epipe: poll after the peer's close: %s\n", evnames(poll_now(c)));
	CHECK(send(c, "x", 1, 0) == 1, "epipe: first send after the peer's close succeeds");
	CHECK(wait_fd(c, 0, 5000) & POLLHUP, "epipe: reset arrives");
	printf("epipe: poll after the reset: %s\n", evnames(poll_now(c)));
	CHECK_ERR(send(c, "x", 1, MSG_NOSIGNAL), EPIPE, "epipe: send MSG_NOSIGNAL");
	printf("epipe: SIGPIPEs after MSG_NOSIGNAL: %d\n", (int)sigpipes);
	CHECK_ERR(send(c, "x", 1, 0), EPIPE, "epipe: send");
	printf("epipe: SIGPIPEs after send: %d\n", (int)sigpipes);
	CHECK_ERR(write(c, "x", 1), EPIPE, "epipe: write");
	printf("epipe: SIGPIPEs after write: %d\n", (int)sigpipes);
	CHECK(recv(c, buf, sizeof buf, 0) == 0, "epipe: recv reads EOF");
	close(c);

	/* Closing with unread data resets the connection. */
	CHECK(tcp_pair(AF_INET, &c, &s) == 0, "reset: pair");
	CHECK(send(c, "unread", 6, 0) == 6 && wait_fd(s, POLLIN, 5000), "reset: data the server never reads");
	close(s);
	CHECK(wait_fd(c, 0, 5000) & POLLHUP, "reset: client sees HUP");
	printf("reset: poll: %s\n", evnames(poll_now(c)));
	{
		int ep = epoll_create1(0);
		struct epoll_event e = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP }, got;
		epoll_ctl(ep, EPOLL_CTL_ADD, c, &e);
		CHECK(epoll_wait(ep, &got, 1, 0) == 1, "reset: epoll ready");
		printf("reset: epoll events: %s\n", evnames(got.events));
		close(ep);
	}
	CHECK_ERR(recv(c, buf, sizeof buf, 0), ECONNRESET, "reset: recv");
	CHECK(recv(c, buf, sizeof buf, 0) == 0, "reset: then EOF");
	CHECK_ERR(send(c, "x", 1, MSG_NOSIGNAL), EPIPE, "reset: then send EPIPE");
	close(c);

	/* SO_LINGER {1, 0}: close sends a reset right away. */
	CHECK(tcp_pair(AF_INET6, &c, &s) == 0, "linger: pair on ::1");
	struct linger lg = { 1, 0 };
	CHECK(setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0, "linger: SO_LINGER {1, 0}");
	memset(&lg, 0xff, sizeof lg);
	socklen_t l = sizeof lg;
	CHECK(getsockopt(s, SOL_SOCKET, SO_LINGER, &lg, &l) == 0 && l == sizeof lg && lg.l_onoff == 1 && lg.l_linger == 0, "linger: reads back");
	close(s);
	CHECK(wait_fd(c, 0, 5000) & POLLHUP, "linger: client sees HUP");
	CHECK(geti(c, SOL_SOCKET, SO_ERROR) == ECONNRESET, "linger: SO_ERROR ECONNRESET");
	CHECK(recv(c, buf, sizeof buf, 0) == 0, "linger: recv then reads EOF");
	close(c);

	sa.sa_handler = SIG_DFL;
	sigaction(SIGPIPE, &sa, NULL);
}

/* recv and accept interrupted by a handler installed without SA_RESTART. */
static void interrupted(void)
{
	struct sigaction sa = { 0 };
	sa.sa_handler = on_sigusr1;
	sa.sa_flags = 0;
	sigaction(SIGUSR1, &sa, NULL);
	int c, s;
	char b;
	CHECK(tcp_pair(AF_INET, &c, &s) == 0, "eintr: pair");
	struct sockaddr_storage la;
	socklen_t lal;
	int ls = listener(AF_INET, 1, &la, &lal);
	pid_t parent = getpid();
	pid_t pid = xfork();
	if (pid == 0) {
		for (;;) { /* until killed: the first signal may come before the recv blocks */
			usleep(50000);
			kill(parent, SIGUSR1);
		}
	}
	CHECK_ERR(recv(c, &b, 1, 0), EINTR, "eintr: recv");
	CHECK_ERR(accept(ls, NULL, NULL), EINTR, "eintr: accept");
	{
		struct pollfd p = { c, POLLIN, 0 };
		CHECK_ERR(poll(&p, 1, 10000), EINTR, "eintr: poll");
	}
	kill(pid, SIGKILL);
	int st;
	CHECK(waitpid(pid, &st, 0) == pid && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "eintr: signaller killed");
	CHECK(sigusr1s > 0, "eintr: the handler ran");
	CHECK(send(s, "z", 1, 0) == 1 && recv(c, &b, 1, 0) == 1 && b == 'z', "eintr: the socket still works");
	sa.sa_handler = SIG_DFL;
	sigaction(SIGUSR1, &sa, NULL);
	close(ls);
	close(c);
	close(s);
}

static void ipv6(void)
{
	int s = socket(AF_INET6, SOCK_STREAM, 0);
	CHECK(geti(s, IPPROTO_IPV6, IPV6_V6ONLY) == 0, "v6: IPV6_V6ONLY default 0");
	CHECK(seti(s, IPPROTO_IPV6, IPV6_V6ONLY, 1) == 0 && geti(s, IPPROTO_IPV6, IPV6_V6ONLY) == 1, "v6: IPV6_V6ONLY set");
	CHECK(seti(s, IPPROTO_IPV6, IPV6_V6ONLY, 0) == 0 && geti(s, IPPROTO_IPV6, IPV6_V6ONLY) == 0, "v6: IPV6_V6ONLY cleared");
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	CHECK_ERR(bind(s, (struct sockaddr *)&sin, sizeof sin), EINVAL, "v6: bind with a sockaddr_in");
	CHECK_ERR(connect(s, (struct sockaddr *)&sin, 23), EINVAL, "v6: connect with addrlen 23");
	close(s);

	/* A dual-stack listener on :: accepts IPv4 clients as v4-mapped addresses. */
	s = socket(AF_INET6, SOCK_STREAM, 0);
	struct sockaddr_in6 any = { .sin6_family = AF_INET6, .sin6_addr = in6addr_any };
	struct sockaddr_in6 a6;
	socklen_t l = sizeof a6;
	CHECK(bind(s, (struct sockaddr *)&any, sizeof any) == 0 && listen(s, 2) == 0 && getsockname(s, (struct sockaddr *)&a6, &l) == 0, "v6: listen on [::]:0");
	CHECK(l == sizeof a6 && a6.sin6_family == AF_INET6 && memcmp(&a6.sin6_addr, &in6addr_any, 16) == 0 && a6.sin6_port != 0, "v6: getsockname [::]");
	sin.sin_port = a6.sin6_port;
	int c = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(connect(c, (struct sockaddr *)&sin, sizeof sin) == 0, "v6: IPv4 client connects to the dual-stack listener");
	struct sockaddr_in6 p6;
	l = sizeof p6;
	int a = accept(s, (struct sockaddr *)&p6, &l);
	CHECK(a >= 0 && l == sizeof p6 && p6.sin6_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&p6.sin6_addr) &&
		      memcmp(&p6.sin6_addr.s6_addr[12], &sin.sin_addr, 4) == 0,
	      "v6: the IPv4 peer is ::ffff:127.0.0.1");
	l = sizeof p6;
	CHECK(getsockname(a, (struct sockaddr *)&p6, &l) == 0 && IN6_IS_ADDR_V4MAPPED(&p6.sin6_addr), "v6: accepted socket's name is v4-mapped");
	close(a);
	close(c);
	close(s);

	/* IPV6_V6ONLY listener: IPv4 clients are refused. */
	s = socket(AF_INET6, SOCK_STREAM, 0);
	CHECK(seti(s, IPPROTO_IPV6, IPV6_V6ONLY, 1) == 0, "v6only: set");
	l = sizeof a6;
	CHECK(bind(s, (struct sockaddr *)&any, sizeof any) == 0 && listen(s, 2) == 0 && getsockname(s, (struct sockaddr *)&a6, &l) == 0, "v6only: listen on [::]:0");
	CHECK_ERR(seti(s, IPPROTO_IPV6, IPV6_V6ONLY, 0), EINVAL, "v6only: cannot change once bound");
	sin.sin_port = a6.sin6_port;
	c = socket(AF_INET, SOCK_STREAM, 0);
	CHECK_ERR(connect(c, (struct sockaddr *)&sin, sizeof sin), ECONNREFUSED, "v6only: IPv4 client refused");
	close(c);
	struct sockaddr_storage ss;
	socklen_t sl = loop_addr(AF_INET6, &ss, a6.sin6_port);
	c = connect_to(&ss, sl, 0);
	CHECK(c >= 0, "v6only: IPv6 client connects");
	close(c);
	close(s);
	s = socket(AF_INET, SOCK_STREAM, 0);
	CHECK_ERR(seti(s, IPPROTO_IPV6, IPV6_V6ONLY, 1), ENOPROTOOPT, "v6only: IPV6_V6ONLY on an AF_INET socket");
	close(s);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	bad_arguments();
	one_process(AF_INET, "v4");
	one_process(AF_INET6, "v6");
	nonblocking_connect();
	addr_in_use();
	backlog();
	fork_server();
	peer_gone();
	interrupted();
	ipv6();
	return finish();
}
