/* Checks unix stream sockets: socketpair, byte stream, MSG_PEEK, FIONREAD, options, SO_RCVTIMEO, shutdown, EPIPE/SIGPIPE/MSG_NOSIGNAL, ECONNRESET, non-blocking, 1 MiB to a child with MSG_WAITALL, listen/accept on abstract and pathname names, SO_PEERCRED. */
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

static volatile sig_atomic_t sigpipes;
static void on_sigpipe(int s)
{
	(void)s;
	sigpipes++;
}

#define XFER (1u << 20)
static unsigned char pattern(size_t i)
{
	return (unsigned char)((i * 2654435761u) >> 13);
}

int main(void)
{
	char buf[256];
	int sv[2], v;
	socklen_t l;
	struct pollfd pf;
	int st;

	/* Byte stream over a socketpair. */
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair stream");
	CHECK(write(sv[0], "abc", 3) == 3 && write(sv[0], "def", 3) == 3, "two writes");
	v = 0;
	CHECK(ioctl(sv[1], FIONREAD, &v) == 0 && v == 6, "FIONREAD counts both writes");
	memset(buf, 0, sizeof buf);
	CHECK(recv(sv[1], buf, 4, MSG_PEEK) == 4 && memcmp(buf, "abcd", 4) == 0, "MSG_PEEK sees data across writes");
	memset(buf, 0, sizeof buf);
	CHECK(read(sv[1], buf, sizeof buf) == 6 && memcmp(buf, "abcdef", 6) == 0, "read glues the stream");
	CHECK(recv(sv[1], buf, sizeof buf, MSG_DONTWAIT) == -1 && errno == EAGAIN, "MSG_DONTWAIT on empty EAGAIN");
	CHECK(send(sv[1], "back", 4, 0) == 4 && recv(sv[0], buf, sizeof buf, 0) == 4, "both directions");
	{
		struct iovec iov[3] = { { "one ", 4 }, { "two ", 4 }, { "three", 5 } };
		CHECK(writev(sv[0], iov, 3) == 13, "writev");
		char a[5] = { 0 }, b[20] = { 0 };
		struct iovec riov[2] = { { a, 4 }, { b, sizeof b - 1 } };
		CHECK(readv(sv[1], riov, 2) == 13 && memcmp(a, "one ", 4) == 0 && strcmp(b, "two three") == 0, "readv");
	}

	/* File facts. */
	struct stat sb;
	CHECK(fstat(sv[0], &sb) == 0 && S_ISSOCK(sb.st_mode), "fstat S_IFSOCK");
	CHECK((fcntl(sv[0], F_GETFL) & O_ACCMODE) == O_RDWR, "socket is O_RDWR");
	CHECK_ERR(lseek(sv[0], 0, SEEK_SET), ESPIPE, "lseek on socket");
	CHECK_ERR(pread(sv[0], buf, 1, 0), ESPIPE, "pread on socket");

	/* Options. */
	l = sizeof v;
	CHECK(getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &v, &l) == 0 && v == SOCK_STREAM && l == sizeof v, "SO_TYPE stream");
	l = sizeof v;
	CHECK(getsockopt(sv[0], SOL_SOCKET, SO_DOMAIN, &v, &l) == 0 && v == AF_UNIX, "SO_DOMAIN");
	l = sizeof v;
	CHECK(getsockopt(sv[0], SOL_SOCKET, SO_PROTOCOL, &v, &l) == 0 && v == 0, "SO_PROTOCOL");
	l = sizeof v;
	CHECK(getsockopt(sv[0], SOL_SOCKET, SO_ACCEPTCONN, &v, &l) == 0 && v == 0, "SO_ACCEPTCONN on a pair");
	v = 4096;
	CHECK(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &v, sizeof v) == 0, "set SO_SNDBUF");
	l = sizeof v;
	CHECK(getsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &v, &l) == 0 && v == 8192, "SO_SNDBUF reads back doubled");
	v = 1;
	CHECK(setsockopt(sv[0], SOL_SOCKET, SO_REUSEADDR, &v, sizeof v) == 0 && setsockopt(sv[0], SOL_SOCKET, SO_KEEPALIVE, &v, sizeof v) == 0, "SO_REUSEADDR, SO_KEEPALIVE accepted");
	{
		struct linger lg = { 1, 5 };
		CHECK(setsockopt(sv[0], SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0, "set SO_LINGER");
		memset(&lg, 0, sizeof lg);
		l = sizeof lg;
		CHECK(getsockopt(sv[0], SOL_SOCKET, SO_LINGER, &lg, &l) == 0 && lg.l_onoff == 1 && lg.l_linger == 5, "SO_LINGER reads back");
	}
	CHECK_ERR(setsockopt(sv[0], SOL_SOCKET, SO_TYPE, &v, sizeof v), ENOPROTOOPT, "set SO_TYPE");
	CHECK_ERR(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &v, 2), EINVAL, "short optlen");
	{
		int p[2];
		CHECK(pipe(p) == 0, "pipe for ENOTSOCK");
		l = sizeof v;
		CHECK_ERR(getsockopt(p[0], SOL_SOCKET, SO_TYPE, &v, &l), ENOTSOCK, "getsockopt on a pipe");
		CHECK_ERR(shutdown(p[0], SHUT_RD), ENOTSOCK, "shutdown on a pipe");
		close(p[0]);
		close(p[1]);
	}
	{
		struct ucred uc;
		l = sizeof uc;
		CHECK(getsockopt(sv[1], SOL_SOCKET, SO_PEERCRED, &uc, &l) == 0 && l == sizeof uc, "SO_PEERCRED on a pair");
		printf("socketpair peer pid: %s\n", uc.pid == getpid() ? "same" : "different");
		CHECK(uc.uid == getuid() && uc.gid == getgid(), "SO_PEERCRED uid/gid");
	}
	{
		struct sockaddr_un a;
		l = sizeof a;
		CHECK(getsockname(sv[0], (struct sockaddr *)&a, &l) == 0 && l == sizeof(sa_family_t) && a.sun_family == AF_UNIX, "getsockname of a pair is unnamed");
		l = sizeof a;
		CHECK(getpeername(sv[0], (struct sockaddr *)&a, &l) == 0 && l == sizeof(sa_family_t), "getpeername of a pair is unnamed");
		abstract_addr(&a, "nowhere");
		CHECK_ERR(sendto(sv[0], "x", 1, 0, (struct sockaddr *)&a, sizeof a), EISCONN, "sendto with address on a connected stream");
	}

	/* Readiness. */
	pf = (struct pollfd){ sv[1], POLLIN | POLLOUT, 0 };
	CHECK(poll(&pf, 1, 0) == 1 && pf.revents == POLLOUT, "poll: writable, not readable");
	CHECK(write(sv[0], "z", 1) == 1, "write one byte");
	pf = (struct pollfd){ sv[1], POLLIN | POLLOUT, 0 };
	CHECK(poll(&pf, 1, 0) == 1 && pf.revents == (POLLIN | POLLOUT), "poll: readable after write");
	CHECK(read(sv[1], buf, 1) == 1, "drain");

	/* SO_RCVTIMEO: a blocking read gives up with EAGAIN. */
	{
		struct timeval tv = { 0, 100000 };
		CHECK(setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0, "set SO_RCVTIMEO");
		memset(&tv, 0, sizeof tv);
		l = sizeof tv;
		CHECK(getsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &tv, &l) == 0 && tv.tv_sec == 0 && tv.tv_usec == 100000, "SO_RCVTIMEO reads back");
		CHECK_ERR(recv(sv[1], buf, 1, 0), EAGAIN, "recv times out");
		tv.tv_usec = 1000000;
		CHECK_ERR(setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), EDOM, "SO_RCVTIMEO with bad usec");
	}

	/* Shutdown. */
	CHECK(shutdown(sv[0], SHUT_WR) == 0, "shutdown SHUT_WR");
	CHECK(recv(sv[1], buf, sizeof buf, 0) == 0, "peer reads EOF");
	pf = (struct pollfd){ sv[1], POLLIN | POLLOUT | POLLRDHUP, 0 };
	CHECK(poll(&pf, 1, 0) == 1 && pf.revents == (POLLIN | POLLOUT | POLLRDHUP), "peer polls POLLIN|POLLOUT|POLLRDHUP");
	CHECK_ERR(send(sv[0], "x", 1, MSG_NOSIGNAL), EPIPE, "send after SHUT_WR");
	CHECK(send(sv[1], "y", 1, 0) == 1 && recv(sv[0], buf, 1, 0) == 1 && buf[0] == 'y', "the other direction still works");
	CHECK_ERR(shutdown(sv[0], 7), EINVAL, "shutdown bad how");
	close(sv[0]);
	close(sv[1]);

	/* EPIPE and SIGPIPE once the peer is gone. */
	signal(SIGPIPE, on_sigpipe);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair for EPIPE");
	CHECK(write(sv[1], "left", 4) == 4, "data left for the survivor");
	close(sv[1]);
	pf = (struct pollfd){ sv[0], POLLIN | POLLOUT | POLLRDHUP, 0 };
	CHECK(poll(&pf, 1, 0) == 1 && pf.revents == (POLLIN | POLLOUT | POLLRDHUP | POLLHUP), "poll after peer close: POLLHUP");
	CHECK_ERR(send(sv[0], "x", 1, MSG_NOSIGNAL), EPIPE, "send MSG_NOSIGNAL to a closed peer");
	printf("SIGPIPEs after MSG_NOSIGNAL: %d\n", (int)sigpipes);
	CHECK_ERR(write(sv[0], "x", 1), EPIPE, "write to a closed peer");
	printf("SIGPIPEs after write: %d\n", (int)sigpipes);
	CHECK(read(sv[0], buf, sizeof buf) == 4 && memcmp(buf, "left", 4) == 0, "queued data survives the peer");
	CHECK(read(sv[0], buf, sizeof buf) == 0, "then EOF");
	close(sv[0]);
	signal(SIGPIPE, SIG_DFL);

	/* Closing with unread data resets the peer. */
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair for reset");
	CHECK(write(sv[0], "unread", 6) == 6, "write unread data");
	close(sv[1]);
	CHECK_ERR(recv(sv[0], buf, 1, 0), ECONNRESET, "recv after peer closed with unread data");
	CHECK(recv(sv[0], buf, 1, 0) == 0, "then EOF");
	close(sv[0]);

	/* Non-blocking: fill the buffer until EAGAIN. */
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0, "socketpair SOCK_NONBLOCK|SOCK_CLOEXEC");
	CHECK((fcntl(sv[0], F_GETFL) & O_NONBLOCK) && (fcntl(sv[1], F_GETFD) & FD_CLOEXEC), "flags applied");
	{
		static char chunk[4096];
		size_t total = 0;
		ssize_t r;
		while ((r = write(sv[0], chunk, sizeof chunk)) > 0)
			total += (size_t)r;
		CHECK(r == -1 && errno == EAGAIN, "write on full socket EAGAIN");
		CHECK(total >= 4096, "buffer holds at least a page");
		pf = (struct pollfd){ sv[0], POLLOUT, 0 };
		CHECK(poll(&pf, 1, 0) == 0, "full socket not writable");
		size_t got = 0;
		while ((r = read(sv[1], chunk, sizeof chunk)) > 0)
			got += (size_t)r;
		CHECK(got == total, "everything written is read back");
		pf = (struct pollfd){ sv[0], POLLOUT, 0 };
		CHECK(poll(&pf, 1, 0) == 1, "writable again after draining");
	}
	close(sv[0]);
	close(sv[1]);

	/* 1 MiB to a child and a checksum back; MSG_WAITALL on the reply. */
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair for transfer");
	pid_t pid = xfork();
	if (pid == 0) {
		close(sv[0]);
		uint64_t sum = 0, count = 0;
		int inorder = 1;
		char rb[7000];
		ssize_t r;
		while ((r = read(sv[1], rb, sizeof rb)) != 0) {
			if (r < 0) {
				if (errno == EINTR)
					continue;
				break;
			}
			for (ssize_t i = 0; i < r; i++) {
				unsigned char c = (unsigned char)rb[i];
				if (c != pattern(count))
					inorder = 0;
				sum = sum * 31 + c;
				count++;
			}
		}
		uint64_t res[3] = { sum, count, (uint64_t)inorder };
		/* In three pieces: the parent waits for all of them. */
		for (int i = 0; i < 3; i++) {
			if (write(sv[1], &res[i], sizeof res[i]) != sizeof res[i])
				_exit(1);
			usleep(10000);
		}
		_exit(0);
	}
	close(sv[1]);
	{
		unsigned char *data = malloc(XFER);
		uint64_t sum = 0;
		for (size_t i = 0; i < XFER; i++) {
			data[i] = pattern(i);
			sum = sum * 31 + data[i];
		}
		size_t off = 0;
		size_t sizes[] = { 1, 4095, 100000, 65536, 300000, 12345 };
		int si = 0, wok = 1;
		while (off < XFER) {
			size_t n = sizes[si++ % 6];
			if (n > XFER - off)
				n = XFER - off;
			ssize_t w = send(sv[0], data + off, n, 0);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				wok = 0;
				break;
			}
			off += (size_t)w;
		}
		CHECK(wok && off == XFER, "1 MiB sent");
		CHECK(shutdown(sv[0], SHUT_WR) == 0, "shutdown the sending side");
		uint64_t res[3] = { 0, 0, 0 };
		CHECK(recv(sv[0], res, sizeof res, MSG_WAITALL) == sizeof res, "MSG_WAITALL gathers the three-piece reply");
		CHECK(res[1] == XFER && res[2] == 1 && res[0] == sum, "child received 1 MiB in order");
		free(data);
	}
	st = 0;
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0, "transfer child exit 0");
	close(sv[0]);

	/* listen/connect/accept on an abstract name, client in a child. */
	{
		struct sockaddr_un a, got;
		socklen_t alen = abstract_addr(&a, "stream");
		int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		CHECK(ls >= 0, "socket");
		CHECK_ERR(listen(ls, 1), EINVAL, "listen unbound");
		CHECK(bind(ls, (struct sockaddr *)&a, alen) == 0, "bind abstract");
		int other = socket(AF_UNIX, SOCK_STREAM, 0);
		CHECK_ERR(bind(other, (struct sockaddr *)&a, alen), EADDRINUSE, "bind the same abstract name");
		CHECK_ERR(connect(other, (struct sockaddr *)&a, alen), ECONNREFUSED, "connect before listen");
		CHECK(listen(ls, 4) == 0, "listen");
		l = sizeof v;
		CHECK(getsockopt(ls, SOL_SOCKET, SO_ACCEPTCONN, &v, &l) == 0 && v == 1, "SO_ACCEPTCONN on a listener");
		l = sizeof got;
		CHECK(getsockname(ls, (struct sockaddr *)&got, &l) == 0 && l == alen && memcmp(&got, &a, alen) == 0, "getsockname of a listener");
		CHECK_ERR(recv(ls, buf, 1, MSG_DONTWAIT), EINVAL, "recv on a listener");
		pf = (struct pollfd){ ls, POLLIN, 0 };
		CHECK(poll(&pf, 1, 0) == 0, "listener not readable without clients");
		pid = xfork();
		if (pid == 0) {
			int c = socket(AF_UNIX, SOCK_STREAM, 0);
			if (connect(c, (struct sockaddr *)&a, alen) != 0)
				_exit(2);
			if (write(c, "hello from child", 16) != 16)
				_exit(3);
			char r[16];
			if (read_full(c, r, 5) != 0 || memcmp(r, "reply", 5) != 0)
				_exit(4);
			_exit(0);
		}
		int c = accept4(ls, (struct sockaddr *)&got, &l, SOCK_CLOEXEC);
		CHECK(c >= 0, "accept4");
		CHECK(l == sizeof(sa_family_t), "unbound client's address is just the family");
		CHECK(fcntl(c, F_GETFD) & FD_CLOEXEC, "accept4 SOCK_CLOEXEC");
		memset(buf, 0, sizeof buf);
		CHECK(read_full(c, buf, 16) == 0 && memcmp(buf, "hello from child", 16) == 0, "server reads the client");
		CHECK(write(c, "reply", 5) == 5, "server replies");
		struct ucred uc;
		l = sizeof uc;
		CHECK(getsockopt(c, SOL_SOCKET, SO_PEERCRED, &uc, &l) == 0, "SO_PEERCRED of the accepted socket");
		printf("accepted peer pid vs child: %s\n", uc.pid == pid ? "same" : "different");
		l = sizeof got;
		CHECK(getsockname(c, (struct sockaddr *)&got, &l) == 0 && l == alen && memcmp(&got, &a, alen) == 0, "accepted socket has the listener's name");
		st = 0;
		CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0, "client child exit 0");
		CHECK(read(c, buf, sizeof buf) == 0, "EOF after the client exits");
		close(c);
		/* A non-blocking accept with nothing queued. */
		CHECK(fcntl(ls, F_SETFL, O_NONBLOCK) == 0, "listener O_NONBLOCK");
		CHECK_ERR(accept(ls, NULL, NULL), EAGAIN, "accept with no client");
		/* A connection queued before accept already carries data. */
		CHECK(connect(other, (struct sockaddr *)&a, alen) == 0, "connect in the same process");
		CHECK_ERR(connect(other, (struct sockaddr *)&a, alen), EISCONN, "connect twice");
		CHECK(write(other, "early", 5) == 5, "write before accept");
		pf = (struct pollfd){ ls, POLLIN, 0 };
		CHECK(poll(&pf, 1, 0) == 1 && pf.revents == POLLIN, "listener readable with a pending client");
		c = accept(ls, NULL, NULL);
		CHECK(c >= 0 && read(c, buf, sizeof buf) == 5, "accepted socket has the early data");
		l = sizeof got;
		CHECK(getpeername(other, (struct sockaddr *)&got, &l) == 0 && l == alen && memcmp(&got, &a, alen) == 0, "client's peer name is the listener's");
		close(c);
		close(other);
		close(ls);
		int again = socket(AF_UNIX, SOCK_STREAM, 0);
		CHECK(bind(again, (struct sockaddr *)&a, alen) == 0, "an abstract name is free once closed");
		close(again);
		abstract_addr(&a, "never-bound");
		int s = socket(AF_UNIX, SOCK_STREAM, 0);
		CHECK_ERR(connect(s, (struct sockaddr *)&a, alen), ECONNREFUSED, "connect to an unknown abstract name");
		CHECK_ERR(connect(s, (struct sockaddr *)&a, sizeof(sa_family_t)), EINVAL, "connect with only a family");
		close(s);
	}

	/* The same on a pathname. */
	{
		struct sockaddr_un a, got;
		socklen_t alen = path_addr(&a, "stream");
		int ls = socket(AF_UNIX, SOCK_STREAM, 0);
		int c = socket(AF_UNIX, SOCK_STREAM, 0);
		CHECK_ERR(connect(c, (struct sockaddr *)&a, alen), ENOENT, "connect to a missing path");
		CHECK(bind(ls, (struct sockaddr *)&a, alen) == 0, "bind pathname");
		{
			struct sockaddr_un b2;
			socklen_t b2len = abstract_addr(&b2, "second-name");
			CHECK_ERR(bind(ls, (struct sockaddr *)&b2, b2len), EINVAL, "bind a bound socket again");
		}
		int other = socket(AF_UNIX, SOCK_STREAM, 0);
		CHECK_ERR(bind(other, (struct sockaddr *)&a, alen), EADDRINUSE, "bind the same path");
		close(other);
		l = sizeof got;
		CHECK(getsockname(ls, (struct sockaddr *)&got, &l) == 0 && l == alen && strcmp(got.sun_path, a.sun_path) == 0, "getsockname gives the path");
		CHECK(listen(ls, 1) == 0, "listen on pathname");
		CHECK(connect(c, (struct sockaddr *)&a, alen) == 0, "connect to pathname");
		int s = accept(ls, NULL, NULL);
		CHECK(s >= 0, "accept on pathname");
		CHECK(send(c, "ping", 4, 0) == 4 && recv(s, buf, sizeof buf, 0) == 4 && memcmp(buf, "ping", 4) == 0, "data over a pathname connection");
		l = sizeof got;
		CHECK(getpeername(c, (struct sockaddr *)&got, &l) == 0 && strcmp(got.sun_path, a.sun_path) == 0, "getpeername gives the path");
		int d = socket(AF_UNIX, SOCK_DGRAM, 0);
		CHECK_ERR(connect(d, (struct sockaddr *)&a, alen), EPROTOTYPE, "datagram connect to a stream path");
		close(d);
		close(s);
		close(c);
		close(ls);
		unlink(a.sun_path); /* natively a socket file was created */
		strcpy(a.sun_path, "/nonexistent-rvisor-dir/sock");
		s = socket(AF_UNIX, SOCK_STREAM, 0);
		CHECK_ERR(bind(s, (struct sockaddr *)&a, sizeof a), ENOENT, "bind in a missing directory");
		close(s);
	}

	return finish();
}
