/* Checks unix datagram and seqpacket sockets: boundaries, MSG_TRUNC, FIONREAD, EMSGSIZE, SHUT_RD, closed peers, named sockets (recvfrom names, connect/AF_UNSPEC, EPERM, autobind), queue limit, sendmmsg/recvmmsg, hostile msghdrs, seqpacket listen/accept. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static int failures;

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
	case ENOTCONN: return "ENOTCONN";
	case EISCONN: return "EISCONN";
	case ECONNREFUSED: return "ECONNREFUSED";
	case ECONNRESET: return "ECONNRESET";
	case EADDRINUSE: return "EADDRINUSE";
	case EMSGSIZE: return "EMSGSIZE";
	case ENOTSOCK: return "ENOTSOCK";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case ENOPROTOOPT: return "ENOPROTOOPT";
	case EPROTOTYPE: return "EPROTOTYPE";
	case EAFNOSUPPORT: return "EAFNOSUPPORT";
	case ESPIPE: return "ESPIPE";
	case EDOM: return "EDOM";
	case ENOTDIR: return "ENOTDIR";
	case ETOOMANYREFS: return "ETOOMANYREFS";
	case EMFILE: return "EMFILE";
	case ESOCKTNOSUPPORT: return "ESOCKTNOSUPPORT";
	case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
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

static pid_t xfork(void)
{
	fflush(stdout);
	return fork();
}

static int finish(void)
{
	if (failures) {
		printf("%d failures\n", failures);
		return 1;
	}
	printf("all ok\n");
	return 0;
}

/* An abstract address "\0rvisor-<tag>-<pid>"; returns its length. */
static __attribute__((unused)) socklen_t abstract_addr(struct sockaddr_un *a, const char *tag)
{
	memset(a, 0, sizeof *a);
	a->sun_family = AF_UNIX;
	int n = snprintf(a->sun_path + 1, sizeof a->sun_path - 1, "rvisor-%s-%d", tag, (int)getpid());
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
}

/* A pathname address under /tmp that does not exist yet; returns its length. */
static __attribute__((unused)) socklen_t path_addr(struct sockaddr_un *a, const char *tag)
{
	memset(a, 0, sizeof *a);
	a->sun_family = AF_UNIX;
	for (int i = 0;; i++) {
		snprintf(a->sun_path, sizeof a->sun_path, "/tmp/rvisor-%s-%d-%d.sock", tag, (int)getpid(), i);
		struct stat st;
		if (lstat(a->sun_path, &st) != 0)
			break;
	}
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(a->sun_path) + 1);
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

static ssize_t recv_flags(int fd, void *b, size_t n, int flags, int *out_flags)
{
	struct iovec iov = { b, n };
	struct msghdr m;
	memset(&m, 0, sizeof m);
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	ssize_t r = recvmsg(fd, &m, flags);
	*out_flags = m.msg_flags;
	return r;
}

int main(void)
{
	char buf[256];
	int sv[2], v, fl;
	socklen_t l;
	struct pollfd pf;
	int st;

	/* Datagram boundaries over a socketpair. */
	CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0, "socketpair dgram");
	CHECK(send(sv[0], "one", 3, 0) == 3 && send(sv[0], "two22", 5, 0) == 5 && send(sv[0], "", 0, 0) == 0, "three datagrams");
	v = 0;
	CHECK(ioctl(sv[1], FIONREAD, &v) == 0 && v == 3, "FIONREAD is the next datagram's size");
	CHECK(recv(sv[1], buf, sizeof buf, 0) == 3 && memcmp(buf, "one", 3) == 0, "first datagram alone");
	CHECK(recv(sv[1], buf, sizeof buf, MSG_PEEK) == 5, "peek the second");
	CHECK(recv(sv[1], buf, sizeof buf, 0) == 5 && memcmp(buf, "two22", 5) == 0, "second datagram alone");
	CHECK(recv(sv[1], buf, sizeof buf, 0) == 0, "empty datagram");
	CHECK_ERR(recv(sv[1], buf, sizeof buf, MSG_DONTWAIT), EAGAIN, "no more datagrams");

	/* Truncation. */
	CHECK(send(sv[0], "0123456789", 10, 0) == 10, "send 10 bytes");
	CHECK(recv_flags(sv[1], buf, 4, MSG_PEEK, &fl) == 4 && (fl & MSG_TRUNC), "peek 4 of 10: MSG_TRUNC");
	CHECK(recv_flags(sv[1], buf, 4, MSG_PEEK | MSG_TRUNC, &fl) == 10, "MSG_TRUNC returns the full length");
	CHECK(recv_flags(sv[1], buf, 4, 0, &fl) == 4 && (fl & MSG_TRUNC) && memcmp(buf, "0123", 4) == 0, "read 4 of 10");
	CHECK_ERR(recv(sv[1], buf, sizeof buf, MSG_DONTWAIT), EAGAIN, "the rest is discarded");
	CHECK(send(sv[0], "abc", 3, 0) == 3 && recv_flags(sv[1], buf, sizeof buf, 0, &fl) == 3 && fl == 0, "no MSG_TRUNC when it fits");

	/* Readiness. */
	pf = (struct pollfd){ sv[1], POLLIN | POLLOUT, 0 };
	CHECK(poll(&pf, 1, 0) == 1 && pf.revents == POLLOUT, "poll: writable only");
	CHECK(send(sv[0], "x", 1, 0) == 1, "one more");
	pf = (struct pollfd){ sv[1], POLLIN | POLLOUT, 0 };
	CHECK(poll(&pf, 1, 0) == 1 && pf.revents == (POLLIN | POLLOUT), "poll: readable");
	CHECK(recv(sv[1], buf, 1, 0) == 1, "drain");

	/* Message size limit follows SO_SNDBUF. */
	v = 8192;
	CHECK(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &v, sizeof v) == 0, "SO_SNDBUF 8192");
	{
		static char big[20000];
		CHECK_ERR(send(sv[0], big, sizeof big, 0), EMSGSIZE, "datagram larger than the send buffer");
		CHECK(send(sv[0], big, 10000, 0) == 10000 && recv(sv[1], big, sizeof big, 0) == 10000, "datagram within it");
	}

	/* SHUT_RD on a datagram socket. */
	CHECK(shutdown(sv[1], SHUT_RD) == 0, "shutdown SHUT_RD");
	CHECK_ERR(send(sv[0], "x", 1, 0), EPIPE, "send to a SHUT_RD socket");
	CHECK_ERR(recv(sv[1], buf, 1, MSG_DONTWAIT), EAGAIN, "non-blocking recv after SHUT_RD");
	CHECK(recv(sv[1], buf, 1, 0) == 0, "blocking recv after SHUT_RD returns 0");
	close(sv[0]);
	close(sv[1]);

	/* A closed peer: ECONNREFUSED once, then not connected. */
	CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0, "socketpair for close");
	close(sv[1]);
	CHECK_ERR(send(sv[0], "x", 1, 0), ECONNREFUSED, "send to a closed peer");
	CHECK_ERR(send(sv[0], "x", 1, 0), ENOTCONN, "then not connected");
	close(sv[0]);

	/* Named datagram sockets. */
	{
		struct sockaddr_un ra, sa, got;
		socklen_t ralen = abstract_addr(&ra, "dgram-r");
		socklen_t salen = abstract_addr(&sa, "dgram-s");
		int r = socket(AF_UNIX, SOCK_DGRAM, 0);
		int s = socket(AF_UNIX, SOCK_DGRAM, 0);
		CHECK(bind(r, (struct sockaddr *)&ra, ralen) == 0, "bind receiver");
		CHECK_ERR(send(s, "x", 1, 0), ENOTCONN, "send without address or peer");
		CHECK(sendto(s, "anon", 4, 0, (struct sockaddr *)&ra, ralen) == 4, "sendto from an unbound socket");
		l = sizeof got;
		CHECK(recvfrom(r, buf, sizeof buf, 0, (struct sockaddr *)&got, &l) == 4 && l == 0, "recvfrom an unbound sender: no address");
		CHECK(bind(s, (struct sockaddr *)&sa, salen) == 0, "bind sender");
		CHECK(sendto(s, "named", 5, 0, (struct sockaddr *)&ra, ralen) == 5, "sendto from a bound socket");
		l = sizeof got;
		CHECK(recvfrom(r, buf, sizeof buf, 0, (struct sockaddr *)&got, &l) == 5 && l == salen && memcmp(&got, &sa, salen) == 0, "recvfrom gives the sender's name");
		l = 4;
		CHECK(sendto(s, "short", 5, 0, (struct sockaddr *)&ra, ralen) == 5 && recvfrom(r, buf, sizeof buf, 0, (struct sockaddr *)&got, &l) == 5 && l == salen, "short address buffer: full length reported");
		CHECK_ERR(sendto(s, "x", 1, 0, (struct sockaddr *)&ra, sizeof(sa_family_t)), EINVAL, "sendto with only a family");
		struct sockaddr_un nowhere;
		socklen_t nlen = abstract_addr(&nowhere, "dgram-nowhere");
		CHECK_ERR(sendto(s, "x", 1, 0, (struct sockaddr *)&nowhere, nlen), ECONNREFUSED, "sendto an unknown abstract name");
		struct sockaddr_un pth;
		socklen_t plen = path_addr(&pth, "dgram-missing");
		CHECK_ERR(sendto(s, "x", 1, 0, (struct sockaddr *)&pth, plen), ENOENT, "sendto a missing path");

		/* connect, send without address, disconnect with AF_UNSPEC. */
		CHECK(connect(s, (struct sockaddr *)&ra, ralen) == 0, "connect dgram");
		CHECK(send(s, "conn", 4, 0) == 4 && recv(r, buf, sizeof buf, 0) == 4, "send to the associated peer");
		l = sizeof got;
		CHECK(getpeername(s, (struct sockaddr *)&got, &l) == 0 && l == ralen && memcmp(&got, &ra, ralen) == 0, "getpeername of a connected dgram socket");
		struct sockaddr unspec = { .sa_family = AF_UNSPEC };
		CHECK(connect(s, &unspec, sizeof unspec) == 0, "disconnect with AF_UNSPEC");
		CHECK_ERR(send(s, "x", 1, 0), ENOTCONN, "not connected after AF_UNSPEC");
		l = sizeof got;
		CHECK_ERR(getpeername(s, (struct sockaddr *)&got, &l), ENOTCONN, "getpeername after AF_UNSPEC");

		/* A receiver associated with someone else refuses others. */
		int t3 = socket(AF_UNIX, SOCK_DGRAM, 0);
		CHECK(connect(r, (struct sockaddr *)&sa, salen) == 0, "receiver connects to the sender");
		CHECK_ERR(sendto(t3, "x", 1, 0, (struct sockaddr *)&ra, ralen), EPERM, "sendto a receiver connected elsewhere");
		CHECK(sendto(s, "ok", 2, 0, (struct sockaddr *)&ra, ralen) == 2, "its peer may still send");
		CHECK(recv(r, buf, sizeof buf, 0) == 2, "and it receives");

		/* Autobind. */
		int ab = socket(AF_UNIX, SOCK_DGRAM, 0);
		struct sockaddr_un fam = { .sun_family = AF_UNIX };
		CHECK(bind(ab, (struct sockaddr *)&fam, sizeof(sa_family_t)) == 0, "autobind");
		l = sizeof got;
		CHECK(getsockname(ab, (struct sockaddr *)&got, &l) == 0 && l == offsetof(struct sockaddr_un, sun_path) + 6 && got.sun_path[0] == 0, "autobind name: NUL and five hex digits");
		close(ab);
		close(t3);
		close(s);
		close(r);
	}

	/* An unconnected receiver takes a bounded number of datagrams. */
	{
		struct sockaddr_un ra;
		socklen_t ralen = abstract_addr(&ra, "dgram-q");
		int r = socket(AF_UNIX, SOCK_DGRAM, 0);
		int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
		CHECK(bind(r, (struct sockaddr *)&ra, ralen) == 0, "bind queue receiver");
		int n = 0;
		while (n < 1000 && sendto(s, "q", 1, 0, (struct sockaddr *)&ra, ralen) == 1)
			n++;
		CHECK(n < 1000 && errno == EAGAIN, "sender blocks once the receiver's queue is full");
		CHECK(n >= 10, "at least ten datagrams queue");
		CHECK(recv(r, buf, sizeof buf, 0) == 1 && sendto(s, "q", 1, 0, (struct sockaddr *)&ra, ralen) == 1, "room after one is read");
		close(s);
		close(r);
	}

	/* SOCK_RAW means datagrams. */
	{
		int s = socket(AF_UNIX, SOCK_RAW, 0);
		l = sizeof v;
		CHECK(s >= 0 && getsockopt(s, SOL_SOCKET, SO_TYPE, &v, &l) == 0 && v == SOCK_DGRAM, "SOCK_RAW is SOCK_DGRAM");
		close(s);
		CHECK_ERR(socket(AF_UNIX, 7, 0), ESOCKTNOSUPPORT, "unknown type");
		CHECK_ERR(socket(AF_UNIX, SOCK_STREAM, 5), EPROTONOSUPPORT, "unknown protocol");
		CHECK_ERR(socket(AF_UNIX, SOCK_STREAM | 0x100, 0), EINVAL, "unknown flags");
		CHECK_ERR(socket(200, SOCK_STREAM, 0), EAFNOSUPPORT, "unknown family");
	}

	/* sendmmsg / recvmmsg. */
	CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0, "socketpair for mmsg");
	{
		struct mmsghdr mm[3];
		struct iovec iov[3];
		char bufs[3][8] = { "one", "two2", "three" };
		memset(mm, 0, sizeof mm);
		for (int i = 0; i < 3; i++) {
			iov[i].iov_base = bufs[i];
			iov[i].iov_len = strlen(bufs[i]);
			mm[i].msg_hdr.msg_iov = &iov[i];
			mm[i].msg_hdr.msg_iovlen = 1;
		}
		CHECK(sendmmsg(sv[0], mm, 3, 0) == 3 && mm[0].msg_len == 3 && mm[1].msg_len == 4 && mm[2].msg_len == 5, "sendmmsg three");
		memset(bufs, 0, sizeof bufs);
		for (int i = 0; i < 3; i++) {
			iov[i].iov_len = 8;
			mm[i].msg_len = 0;
		}
		CHECK(recvmmsg(sv[1], mm, 2, 0, NULL) == 2 && mm[0].msg_len == 3 && mm[1].msg_len == 4 && strcmp(bufs[1], "two2") == 0, "recvmmsg two");
		CHECK(recvmmsg(sv[1], mm, 3, MSG_WAITFORONE, NULL) == 1 && mm[0].msg_len == 5, "recvmmsg MSG_WAITFORONE");
		CHECK_ERR(recvmmsg(sv[1], mm, 3, MSG_DONTWAIT, NULL), EAGAIN, "recvmmsg on empty");
		struct timespec ts = { 0, -1 };
		CHECK_ERR(recvmmsg(sv[1], mm, 3, 0, &ts), EINVAL, "recvmmsg bad timeout");
	}
	/* Hostile msghdr fields. */
	{
		struct iovec iov[1025];
		for (int i = 0; i < 1025; i++) {
			iov[i].iov_base = buf;
			iov[i].iov_len = 1;
		}
		struct msghdr m;
		memset(&m, 0, sizeof m);
		m.msg_iov = iov;
		m.msg_iovlen = 1025;
		CHECK_ERR(sendmsg(sv[0], &m, 0), EMSGSIZE, "sendmsg with 1025 iovecs");
		m.msg_iovlen = 1;
		m.msg_iov = (struct iovec *)8;
		CHECK_ERR(sendmsg(sv[0], &m, 0), EFAULT, "sendmsg with a bad iovec pointer");
		CHECK_ERR(sendto(sv[0], (void *)8, 10, 0, NULL, 0), EFAULT, "sendto from a bad buffer");
		CHECK_ERR(recvmsg(sv[1], (struct msghdr *)8, 0), EFAULT, "recvmsg with a bad msghdr");
		m.msg_iov = iov;
		m.msg_control = buf;
		m.msg_controllen = 16;
		struct cmsghdr *c = (struct cmsghdr *)buf;
		c->cmsg_len = 1000;
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		CHECK_ERR(sendmsg(sv[0], &m, 0), EINVAL, "cmsg_len beyond the control buffer");
	}
	close(sv[0]);
	close(sv[1]);

	/* Seqpacket: boundaries, truncation, EPIPE, EOF. */
	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0, "socketpair seqpacket");
	CHECK(send(sv[0], "hello", 5, 0) == 5 && send(sv[0], "world!", 6, MSG_EOR) == 6, "two records");
	v = 0;
	CHECK(ioctl(sv[1], FIONREAD, &v) == 0 && v == 11, "FIONREAD counts all records");
	CHECK(recv(sv[1], buf, sizeof buf, 0) == 5, "first record alone");
	CHECK(recv_flags(sv[1], buf, 3, 0, &fl) == 3 && (fl & MSG_TRUNC), "second record truncated");
	CHECK_ERR(recv(sv[1], buf, sizeof buf, MSG_DONTWAIT), EAGAIN, "truncated rest discarded");
	l = sizeof v;
	CHECK(getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &v, &l) == 0 && v == SOCK_SEQPACKET, "SO_TYPE seqpacket");
	{
		struct sockaddr_un a;
		socklen_t alen = abstract_addr(&a, "seq-ignored");
		CHECK(sendto(sv[0], "x", 1, 0, (struct sockaddr *)&a, alen) == 1 && recv(sv[1], buf, sizeof buf, 0) == 1, "seqpacket ignores a destination");
	}
	close(sv[1]);
	CHECK(recv(sv[0], buf, sizeof buf, 0) == 0, "recv after the peer closed: 0");
	CHECK_ERR(send(sv[0], "x", 1, MSG_NOSIGNAL), EPIPE, "send after the peer closed: EPIPE");
	close(sv[0]);
	{
		int s = socket(AF_UNIX, SOCK_SEQPACKET, 0);
		CHECK_ERR(send(s, "x", 1, 0), ENOTCONN, "send on an unconnected seqpacket socket");
		CHECK_ERR(recv(s, buf, 1, 0), ENOTCONN, "recv on an unconnected seqpacket socket");
		close(s);
	}

	/* Seqpacket listen/accept with a child client. */
	{
		struct sockaddr_un a;
		socklen_t alen = abstract_addr(&a, "seq");
		int ls = socket(AF_UNIX, SOCK_SEQPACKET, 0);
		CHECK(bind(ls, (struct sockaddr *)&a, alen) == 0 && listen(ls, 2) == 0, "seqpacket listen");
		int d = socket(AF_UNIX, SOCK_DGRAM, 0);
		CHECK_ERR(listen(d, 1), EOPNOTSUPP, "listen on a datagram socket");
		CHECK_ERR(accept(d, NULL, NULL), EOPNOTSUPP, "accept on a datagram socket");
		close(d);
		pid_t pid = xfork();
		if (pid == 0) {
			int c = socket(AF_UNIX, SOCK_SEQPACKET, 0);
			if (connect(c, (struct sockaddr *)&a, alen) != 0)
				_exit(2);
			if (send(c, "rec1", 4, 0) != 4 || send(c, "record2", 7, 0) != 7)
				_exit(3);
			char r[16];
			if (recv(c, r, sizeof r, 0) != 3)
				_exit(4);
			_exit(0);
		}
		int c = accept(ls, NULL, NULL);
		CHECK(c >= 0, "seqpacket accept");
		CHECK(recv(c, buf, sizeof buf, 0) == 4 && recv(c, buf, sizeof buf, 0) == 7, "records arrive whole");
		CHECK(send(c, "ack", 3, 0) == 3, "reply");
		st = 0;
		CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0, "seqpacket child exit 0");
		CHECK(recv(c, buf, sizeof buf, 0) == 0, "EOF after the client exits");
		close(c);
		close(ls);
	}

	return finish();
}
