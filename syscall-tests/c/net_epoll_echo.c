/* Checks epoll on TCP sockets: edge-triggered EPOLLIN/EPOLLOUT, level-triggered re-reporting, EPOLLONESHOT re-arming, then a non-blocking edge-triggered echo server that serves several forked clients at once (lock-step and pipelined ones), buffering what it cannot write yet and waiting for EPOLLOUT. Prints only totals, never event counts or ports. */
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

static int listener(struct sockaddr_storage *a, socklen_t *len, int flags)
{
	int s = socket(AF_INET, SOCK_STREAM | flags, 0);
	*len = loop_addr(AF_INET, a, 0);
	socklen_t l = sizeof *a;
	if (s < 0 || bind(s, (struct sockaddr *)a, *len) != 0 || listen(s, 64) != 0 || getsockname(s, (struct sockaddr *)a, &l) != 0)
		return -1;
	return s;
}

static int tcp_pair(int *client, int *server)
{
	struct sockaddr_storage a;
	socklen_t al;
	int ls = listener(&a, &al, 0);
	*client = socket(AF_INET, SOCK_STREAM, 0);
	if (ls < 0 || connect(*client, (struct sockaddr *)&a, al) != 0)
		return -1;
	*server = accept4(ls, NULL, NULL, SOCK_NONBLOCK);
	close(ls);
	return *server >= 0 ? 0 : -1;
}

static int ep_wait1(int ep, int ms, struct epoll_event *e)
{
	int r;
	do
		r = epoll_wait(ep, e, 1, ms);
	while (r < 0 && errno == EINTR);
	return r;
}

static void triggers(void)
{
	int c = -1, s = -1;
	char buf[64];
	struct epoll_event e;
	CHECK(tcp_pair(&c, &s) == 0, "et: pair");
	int ep = epoll_create1(0);
	e = (struct epoll_event){ .events = EPOLLIN | EPOLLET, .data.u32 = 1 };
	CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, s, &e) == 0, "et: add EPOLLIN|EPOLLET");
	CHECK(ep_wait1(ep, 0, &e) == 0, "et: nothing yet");
	CHECK(write(c, "0123456789", 10) == 10, "et: client writes 10 bytes");
	CHECK(ep_wait1(ep, 5000, &e) == 1 && e.events == EPOLLIN && e.data.u32 == 1, "et: EPOLLIN");
	CHECK(ep_wait1(ep, 0, &e) == 0, "et: reported once");
	CHECK(read(s, buf, 5) == 5, "et: read half");
	CHECK(ep_wait1(ep, 0, &e) == 0, "et: not again for old data");
	e = (struct epoll_event){ .events = EPOLLIN, .data.u32 = 2 };
	CHECK(epoll_ctl(ep, EPOLL_CTL_MOD, s, &e) == 0, "et: switch to level-triggered");
	CHECK(ep_wait1(ep, 0, &e) == 1 && e.data.u32 == 2, "lt: reported");
	CHECK(ep_wait1(ep, 0, &e) == 1, "lt: and again");
	e = (struct epoll_event){ .events = EPOLLIN | EPOLLET, .data.u32 = 3 };
	CHECK(epoll_ctl(ep, EPOLL_CTL_MOD, s, &e) == 0, "et: back to edge-triggered");
	CHECK(ep_wait1(ep, 0, &e) == 1 && e.data.u32 == 3, "et: MOD re-reports pending data");
	CHECK(ep_wait1(ep, 0, &e) == 0, "et: then quiet");
	CHECK(write(c, "x", 1) == 1, "et: one more byte");
	CHECK(ep_wait1(ep, 5000, &e) == 1 && e.events == EPOLLIN, "et: new data, new edge");
	CHECK(read(s, buf, sizeof buf) == 6, "et: drain");
	CHECK_ERR(read(s, buf, sizeof buf), EAGAIN, "et: drained to EAGAIN");

	e = (struct epoll_event){ .events = EPOLLIN | EPOLLONESHOT, .data.u32 = 4 };
	CHECK(epoll_ctl(ep, EPOLL_CTL_MOD, s, &e) == 0, "oneshot: MOD to EPOLLIN|EPOLLONESHOT");
	CHECK(write(c, "a", 1) == 1, "oneshot: data");
	CHECK(ep_wait1(ep, 5000, &e) == 1 && e.data.u32 == 4, "oneshot: reported");
	CHECK(write(c, "b", 1) == 1, "oneshot: more data");
	CHECK(ep_wait1(ep, 200, &e) == 0, "oneshot: disarmed");
	e = (struct epoll_event){ .events = EPOLLIN | EPOLLONESHOT, .data.u32 = 5 };
	CHECK(epoll_ctl(ep, EPOLL_CTL_MOD, s, &e) == 0, "oneshot: re-arm");
	CHECK(ep_wait1(ep, 0, &e) == 1 && e.data.u32 == 5, "oneshot: reported after re-arm");
	CHECK(read(s, buf, sizeof buf) == 2, "oneshot: both bytes there");
	CHECK(epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL) == 0, "del");

	/* EPOLLOUT|EPOLLET: fill the socket, then the peer drains it. */
	e = (struct epoll_event){ .events = EPOLLOUT | EPOLLET, .data.u32 = 6 };
	CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, s, &e) == 0, "etout: add EPOLLOUT|EPOLLET");
	CHECK(ep_wait1(ep, 0, &e) == 1 && e.events == EPOLLOUT, "etout: writable at first");
	CHECK(ep_wait1(ep, 0, &e) == 0, "etout: reported once");
	static char chunk[65536];
	size_t total = 0;
	ssize_t r;
	while ((r = write(s, chunk, sizeof chunk)) > 0)
		total += (size_t)r;
	CHECK(r == -1 && errno == EAGAIN && total > 0, "etout: fill until EAGAIN");
	CHECK(ep_wait1(ep, 0, &e) == 0, "etout: not writable when full");
	size_t got = 0;
	while (got < total && wait_fd(c, POLLIN, 5000) && (r = read(c, chunk, sizeof chunk)) > 0)
		got += (size_t)r;
	/* The edge happened while the peer read; it waits in the ready list. */
	CHECK(ep_wait1(ep, 5000, &e) == 1 && e.events == EPOLLOUT, "etout: EPOLLOUT edge once the peer reads");
	CHECK(ep_wait1(ep, 0, &e) == 0, "etout: reported once");
	CHECK(got == total, "etout: the peer got everything");
	close(ep);
	close(c);
	close(s);
}

/* ---- The echo server. */

#define NCLIENTS 5
#define ROUNDS 40
#define PIPELINED (256 * 1024)

struct conn {
	int fd;
	char *out;
	size_t outlen, outcap;
	size_t echoed;
	int eof, rdhup, closed;
};

static unsigned char pat(int id, size_t i)
{
	return (unsigned char)((i * 131u + (unsigned)id * 7u) ^ (i >> 9));
}

static size_t round_size(int id, int round)
{
	static const size_t sizes[] = { 1, 7, 100, 1000, 4096, 12345, 65536, 3 };
	return sizes[(round + id) % 8];
}

/* Client: lock-step rounds (even ids) or one pipelined burst (odd ids). Exits 0 if every echo matched. */
static void client(const struct sockaddr_storage *a, socklen_t al, int id)
{
	int c = socket(AF_INET, SOCK_STREAM, 0);
	struct timeval tv = { 20, 0 };
	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (connect(c, (const struct sockaddr *)a, al) != 0)
		_exit(10);
	if (id % 2 == 0) {
		char *b = malloc(65536), *r = malloc(65536);
		size_t off = 0;
		for (int round = 0; round < ROUNDS; round++) {
			size_t n = round_size(id, round);
			for (size_t i = 0; i < n; i++)
				b[i] = (char)pat(id, off + i);
			if (write_full(c, b, n) != 0)
				_exit(11);
			if (read_full(c, r, n) != 0)
				_exit(12);
			if (memcmp(b, r, n) != 0)
				_exit(13);
			off += n;
		}
	} else {
		char *b = malloc(PIPELINED), *r = malloc(PIPELINED);
		for (size_t i = 0; i < PIPELINED; i++)
			b[i] = (char)pat(id, i);
		if (write_full(c, b, PIPELINED) != 0) /* the server buffers what it cannot echo yet */
			_exit(14);
		if (read_full(c, r, PIPELINED) != 0)
			_exit(15);
		if (memcmp(b, r, PIPELINED) != 0)
			_exit(16);
	}
	if (shutdown(c, SHUT_WR) != 0)
		_exit(17);
	char x;
	if (read(c, &x, 1) != 0) /* the server closes after our EOF */
		_exit(18);
	_exit(0);
}

static int flush(struct conn *k)
{
	while (k->outlen > 0) {
		ssize_t w = send(k->fd, k->out, k->outlen, MSG_NOSIGNAL);
		if (w < 0)
			return errno == EAGAIN ? 0 : -1;
		memmove(k->out, k->out + w, k->outlen - (size_t)w);
		k->outlen -= (size_t)w;
		k->echoed += (size_t)w;
	}
	return 0;
}

static int drain(struct conn *k)
{
	char buf[16384];
	for (;;) {
		ssize_t r = recv(k->fd, buf, sizeof buf, 0);
		if (r == 0) {
			k->eof = 1;
			return 0;
		}
		if (r < 0)
			return errno == EAGAIN ? 0 : -1;
		if (k->outlen + (size_t)r > k->outcap) {
			k->outcap = (k->outlen + (size_t)r) * 2;
			k->out = realloc(k->out, k->outcap);
		}
		memcpy(k->out + k->outlen, buf, (size_t)r);
		k->outlen += (size_t)r;
	}
}

static void echo_server(void)
{
	struct sockaddr_storage a;
	socklen_t al;
	int ls = listener(&a, &al, SOCK_NONBLOCK);
	CHECK(ls >= 0, "echo: non-blocking listener");
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event e = { .events = EPOLLIN | EPOLLET, .data.ptr = NULL };
	CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, ls, &e) == 0, "echo: listener in epoll, edge-triggered");
	pid_t pids[NCLIENTS];
	for (int i = 0; i < NCLIENTS; i++) {
		pids[i] = xfork();
		if (pids[i] == 0) {
			close(ep);
			close(ls);
			client(&a, al, i);
		}
	}
	struct conn conns[NCLIENTS];
	memset(conns, 0, sizeof conns);
	int accepted = 0, closed = 0, errors = 0, timeouts = 0, nonblocking = 1;
	while (closed < NCLIENTS && !errors) {
		struct epoll_event evs[8];
		int n = epoll_wait(ep, evs, 8, 20000);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			timeouts++;
			break;
		}
		for (int i = 0; i < n; i++) {
			struct conn *k = evs[i].data.ptr;
			if (!k) {
				for (;;) {
					int fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
					if (fd < 0) {
						if (errno != EAGAIN)
							errors++;
						break;
					}
					if (accepted == NCLIENTS) {
						errors++;
						close(fd);
						continue;
					}
					if (!(fcntl(fd, F_GETFL) & O_NONBLOCK))
						nonblocking = 0;
					k = &conns[accepted++];
					k->fd = fd;
					struct epoll_event ce = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = k };
					if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ce) != 0)
						errors++;
				}
				continue;
			}
			if (k->closed)
				continue;
			if (evs[i].events & EPOLLRDHUP)
				k->rdhup = 1;
			if (evs[i].events & (EPOLLERR | EPOLLHUP))
				errors++;
			if ((evs[i].events & (EPOLLIN | EPOLLRDHUP)) && drain(k) != 0)
				errors++;
			if (flush(k) != 0)
				errors++;
			if (k->eof && k->outlen == 0) {
				close(k->fd); /* also leaves the epoll set */
				k->closed = 1;
				closed++;
			}
		}
	}
	size_t total = 0;
	int rdhups = 0;
	for (int i = 0; i < accepted; i++) {
		total += conns[i].echoed;
		rdhups += conns[i].rdhup;
		free(conns[i].out);
		if (!conns[i].closed)
			close(conns[i].fd);
	}
	if (closed < NCLIENTS)
		for (int i = 0; i < NCLIENTS; i++)
			kill(pids[i], SIGKILL);
	int ok = 0;
	for (int i = 0; i < NCLIENTS; i++)
		ok += reaped_ok(pids[i]);
	size_t want = 0;
	for (int id = 0; id < NCLIENTS; id++) {
		if (id % 2)
			want += PIPELINED;
		else
			for (int r = 0; r < ROUNDS; r++)
				want += round_size(id, r);
	}
	printf("echo: accepted %d, closed %d, errors %d, timeouts %d\n", accepted, closed, errors, timeouts);
	CHECK(nonblocking, "echo: accept4 SOCK_NONBLOCK");
	printf("echo: bytes echoed %zu (expected %zu)\n", total, want);
	CHECK(total == want, "echo: every byte echoed");
	printf("echo: connections that reported EPOLLRDHUP: %d\n", rdhups);
	printf("echo: clients that exited 0: %d of %d\n", ok, NCLIENTS);
	if (accepted != NCLIENTS || closed != NCLIENTS || errors || timeouts || ok != NCLIENTS || rdhups != NCLIENTS)
		failures++;
	close(ep);
	close(ls);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	triggers();
	echo_server();
	return finish();
}
