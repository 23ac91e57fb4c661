/* Checks SCM_RIGHTS (pipes and sockets, MSG_CMSG_CLOEXEC, MSG_CTRUNC, 253-fd limit, EBADF, MSG_PEEK, stream stops after fds, in-flight fds dropped with their sockets, across fork) and SCM_CREDENTIALS/SO_PASSCRED, SO_PEERCRED on a pathname listener. */
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

/* Sends `n` fds (and one data byte `tag`) with SCM_RIGHTS. */
static ssize_t send_fds(int s, const int *fds, int n, char tag)
{
	char ctl[CMSG_SPACE(sizeof(int) * 256)];
	struct iovec iov = { &tag, 1 };
	struct msghdr m;
	memset(&m, 0, sizeof m);
	memset(ctl, 0, sizeof ctl);
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	m.msg_control = ctl;
	m.msg_controllen = CMSG_SPACE(sizeof(int) * n);
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * n);
	memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
	return sendmsg(s, &m, 0);
}

/* Receives into `data` with a control buffer of `ctllen` bytes; stores up
 * to `max` passed fds in `fds`, their count in *nfds, msg_flags in *flags. */
static ssize_t recv_fds(int s, char *data, size_t len, size_t ctllen, int flags, int *fds, int max, int *nfds, int *mflags)
{
	char ctl[4096];
	struct iovec iov = { data, len };
	struct msghdr m;
	memset(&m, 0, sizeof m);
	memset(ctl, 0, sizeof ctl);
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	m.msg_control = ctllen ? ctl : NULL;
	m.msg_controllen = ctllen;
	ssize_t r = recvmsg(s, &m, flags);
	*nfds = 0;
	*mflags = m.msg_flags;
	if (r < 0)
		return r;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			int n = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			for (int i = 0; i < n && *nfds < max; i++)
				memcpy(&fds[(*nfds)++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
		}
	}
	return r;
}

/* Closes fds[0..n). */
static void close_all(const int *fds, int n)
{
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

int main(void)
{
	char buf[256];
	int sv[2], p[2], got[300], n, fl, st;
	socklen_t l;

	/* Pass a pipe's read end; the receiver reads through its new fd. */
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
	CHECK(pipe(p) == 0, "pipe");
	CHECK(send_fds(sv[0], &p[0], 1, 'A') == 1, "sendmsg SCM_RIGHTS");
	CHECK(recv_fds(sv[1], buf, sizeof buf, 256, 0, got, 4, &n, &fl) == 1 && buf[0] == 'A' && n == 1 && fl == 0, "recvmsg gets one fd");
	CHECK(n == 1 && got[0] != p[0], "a new fd number");
	CHECK(write(p[1], "through", 7) == 7 && read(got[0], buf, sizeof buf) == 7 && memcmp(buf, "through", 7) == 0, "the passed fd reads the pipe");
	CHECK(fcntl(got[0], F_GETFD) == 0, "no FD_CLOEXEC by default");
	close(got[0]);
	CHECK(send_fds(sv[0], &p[0], 1, 'B') == 1, "send again");
	CHECK(recv_fds(sv[1], buf, sizeof buf, 256, MSG_CMSG_CLOEXEC, got, 4, &n, &fl) == 1 && n == 1, "recvmsg MSG_CMSG_CLOEXEC");
	CHECK(fcntl(got[0], F_GETFD) & FD_CLOEXEC, "FD_CLOEXEC with MSG_CMSG_CLOEXEC");
	CHECK(fl & MSG_CMSG_CLOEXEC, "msg_flags echoes MSG_CMSG_CLOEXEC");
	close(got[0]);

	/* Too small a control buffer: MSG_CTRUNC, the fds are closed. */
	CHECK(send_fds(sv[0], &p[0], 1, 'C') == 1, "send for CTRUNC");
	CHECK(recv_fds(sv[1], buf, sizeof buf, CMSG_LEN(sizeof(int)) - 1, 0, got, 4, &n, &fl) == 1 && n == 0 && (fl & MSG_CTRUNC), "no room for one fd: MSG_CTRUNC");
	int three[3] = { p[0], p[0], p[1] };
	CHECK(send_fds(sv[0], three, 3, 'D') == 1, "send three fds");
	CHECK(recv_fds(sv[1], buf, sizeof buf, CMSG_LEN(sizeof(int)), 0, got, 4, &n, &fl) == 1 && n == 1 && (fl & MSG_CTRUNC), "room for one of three: one fd and MSG_CTRUNC");
	close_all(got, n);
	CHECK(send_fds(sv[0], &p[0], 1, 'E') == 1, "send for plain read");
	CHECK(read(sv[1], buf, sizeof buf) == 1 && buf[0] == 'E', "read() drops passed fds");

	/* Limits and bad fds. */
	{
		int many[254];
		for (int i = 0; i < 254; i++)
			many[i] = p[0];
		CHECK(send_fds(sv[0], many, 253, 'F') == 1, "253 fds in one message");
		CHECK(recv_fds(sv[1], buf, sizeof buf, 4096, 0, got, 300, &n, &fl) == 1 && n == 253 && fl == 0, "253 fds received");
		close_all(got, n);
		CHECK_ERR(send_fds(sv[0], many, 254, 'G'), EINVAL, "254 fds");
		int bad = 999;
		CHECK_ERR(send_fds(sv[0], &bad, 1, 'H'), EBADF, "a closed fd");
		CHECK_ERR(recv(sv[1], buf, sizeof buf, MSG_DONTWAIT), EAGAIN, "failed sends queued nothing");
	}

	/* Stream reads stop after a message carrying fds, but glue what came before. */
	CHECK(send(sv[0], "xy", 2, 0) == 2 && send_fds(sv[0], &p[0], 1, 'A') == 1 && send(sv[0], "BC", 2, 0) == 2, "data, fd, data");
	memset(buf, 0, sizeof buf);
	CHECK(recv_fds(sv[1], buf, sizeof buf, 256, 0, got, 4, &n, &fl) == 3 && memcmp(buf, "xyA", 3) == 0 && n == 1, "read up to and including the fd message");
	close_all(got, n);
	memset(buf, 0, sizeof buf);
	CHECK(recv_fds(sv[1], buf, sizeof buf, 256, 0, got, 4, &n, &fl) == 2 && memcmp(buf, "BC", 2) == 0 && n == 0, "then the rest, without fds");

	/* MSG_PEEK installs the fds too; the real read gets them again. */
	CHECK(send_fds(sv[0], &p[0], 1, 'P') == 1, "send for peek");
	int peeked[4], pn;
	CHECK(recv_fds(sv[1], buf, sizeof buf, 256, MSG_PEEK, peeked, 4, &pn, &fl) == 1 && pn == 1, "peek gets an fd");
	CHECK(recv_fds(sv[1], buf, sizeof buf, 256, 0, got, 4, &n, &fl) == 1 && n == 1 && got[0] != peeked[0], "read gets another fd");
	CHECK(write(p[1], "pk", 2) == 2 && read(peeked[0], buf, 1) == 1 && read(got[0], buf, 1) == 1, "both fds work");
	close(peeked[0]);
	close(got[0]);
	close(sv[0]);
	close(sv[1]);
	close(p[0]);
	close(p[1]);

	/* A write end passed and dropped unread does not keep the pipe open. */
	CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0 && pipe(p) == 0, "pair and pipe for in-flight close");
	CHECK(send_fds(sv[0], &p[1], 1, 'W') == 1, "pass the write end");
	close(p[1]);
	close(sv[0]);
	close(sv[1]);
	CHECK(read(p[0], buf, sizeof buf) == 0, "EOF once the in-flight write end is dropped with the sockets");
	close(p[0]);

	/* Pass a socket through a socket, and use it. */
	{
		int a[2], b[2];
		CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, a) == 0 && socketpair(AF_UNIX, SOCK_STREAM, 0, b) == 0, "two pairs");
		CHECK(send_fds(a[0], &b[1], 1, 'S') == 1, "pass a socket");
		close(b[1]);
		CHECK(recv_fds(a[1], buf, sizeof buf, 256, 0, got, 4, &n, &fl) == 1 && n == 1, "receive the socket");
		CHECK(write(b[0], "via", 3) == 3 && read(got[0], buf, sizeof buf) == 3 && memcmp(buf, "via", 3) == 0, "the passed socket works");
		struct stat sb;
		CHECK(fstat(got[0], &sb) == 0 && S_ISSOCK(sb.st_mode), "and is a socket");
		close(got[0]);
		close(b[0]);
		close(a[0]);
		close(a[1]);
	}

	/* Across fork: the child creates a pipe and passes the read end up. */
	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0, "seqpacket pair for fork");
	pid_t pid = xfork();
	if (pid == 0) {
		close(sv[0]);
		int q[2];
		if (pipe(q) != 0 || send_fds(sv[1], &q[0], 1, 'K') != 1)
			_exit(2);
		close(q[0]);
		if (write(q[1], "from the child", 14) != 14)
			_exit(3);
		_exit(0);
	}
	close(sv[1]);
	CHECK(recv_fds(sv[0], buf, sizeof buf, 256, 0, got, 4, &n, &fl) == 1 && n == 1, "parent receives the child's pipe");
	memset(buf, 0, sizeof buf);
	CHECK(read_full(got[0], buf, 14) == 0 && memcmp(buf, "from the child", 14) == 0, "parent reads what the child wrote");
	st = 0;
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0, "fd child exit 0");
	CHECK(read(got[0], buf, sizeof buf) == 0, "EOF after the child exits");
	close(got[0]);
	close(sv[0]);

	/* SCM_CREDENTIALS with SO_PASSCRED. */
	CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0, "pair for credentials");
	{
		int on = 1;
		CHECK(setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof on) == 0, "SO_PASSCRED");
		l = sizeof on;
		on = 0;
		CHECK(getsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &on, &l) == 0 && on == 1, "SO_PASSCRED reads back");
		pid = xfork();
		if (pid == 0) {
			_exit(send(sv[0], "c", 1, 0) == 1 ? 0 : 1);
		}
		char ctl[CMSG_SPACE(sizeof(struct ucred))];
		struct iovec iov = { buf, sizeof buf };
		struct msghdr m;
		memset(&m, 0, sizeof m);
		m.msg_iov = &iov;
		m.msg_iovlen = 1;
		m.msg_control = ctl;
		m.msg_controllen = sizeof ctl;
		CHECK(recvmsg(sv[1], &m, 0) == 1, "recvmsg with credentials");
		struct cmsghdr *c = CMSG_FIRSTHDR(&m);
		CHECK(c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len == CMSG_LEN(sizeof(struct ucred)), "an SCM_CREDENTIALS message");
		if (c) {
			struct ucred uc;
			memcpy(&uc, CMSG_DATA(c), sizeof uc);
			printf("credentials pid vs sender: %s\n", uc.pid == pid ? "same" : "different");
			CHECK(uc.uid == getuid() && uc.gid == getgid(), "credentials uid/gid");
		}
		st = 0;
		CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0, "credentials child exit 0");

		/* Explicit credentials of one's own. */
		struct ucred mine = { getpid(), getuid(), getgid() };
		memset(&m, 0, sizeof m);
		memset(ctl, 0, sizeof ctl);
		iov.iov_len = 1;
		m.msg_iov = &iov;
		m.msg_iovlen = 1;
		m.msg_control = ctl;
		m.msg_controllen = sizeof ctl;
		c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_CREDENTIALS;
		c->cmsg_len = CMSG_LEN(sizeof mine);
		memcpy(CMSG_DATA(c), &mine, sizeof mine);
		CHECK(sendmsg(sv[0], &m, 0) == 1, "sendmsg with own SCM_CREDENTIALS");
		c->cmsg_len = CMSG_LEN(sizeof mine) - 1;
		CHECK_ERR(sendmsg(sv[0], &m, 0), EINVAL, "SCM_CREDENTIALS of the wrong size");
		memset(&m, 0, sizeof m);
		iov.iov_len = sizeof buf;
		m.msg_iov = &iov;
		m.msg_iovlen = 1;
		m.msg_control = ctl;
		m.msg_controllen = sizeof ctl;
		CHECK(recvmsg(sv[1], &m, 0) == 1 && (c = CMSG_FIRSTHDR(&m)) && c->cmsg_type == SCM_CREDENTIALS, "received");
		struct ucred uc;
		memcpy(&uc, CMSG_DATA(c), sizeof uc);
		CHECK(uc.pid == getpid(), "explicit credentials arrive");
		/* No room: MSG_CTRUNC. */
		CHECK(send(sv[0], "z", 1, 0) == 1, "send for no control buffer");
		CHECK(recv_fds(sv[1], buf, sizeof buf, 0, 0, got, 4, &n, &fl) == 1 && (fl & MSG_CTRUNC), "credentials without a control buffer: MSG_CTRUNC");
	}
	close(sv[0]);
	close(sv[1]);

	/* SO_PEERCRED through listen/accept on a pathname, client in a child. */
	{
		struct sockaddr_un a;
		socklen_t alen = path_addr(&a, "rights");
		int ls = socket(AF_UNIX, SOCK_STREAM, 0);
		CHECK(bind(ls, (struct sockaddr *)&a, alen) == 0 && listen(ls, 1) == 0, "listen on a pathname");
		int ready[2];
		CHECK(pipe(ready) == 0, "pipe to hold the child");
		pid = xfork();
		if (pid == 0) {
			close(ready[1]);
			int c = socket(AF_UNIX, SOCK_STREAM, 0);
			if (connect(c, (struct sockaddr *)&a, alen) != 0)
				_exit(2);
			struct ucred uc;
			socklen_t ul = sizeof uc;
			if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &uc, &ul) != 0 || uc.pid != getppid())
				_exit(3);
			/* Pass our end of a fresh pipe to the server, then wait. */
			int q[2];
			if (pipe(q) != 0 || send_fds(c, &q[1], 1, 'Q') != 1)
				_exit(4);
			close(q[1]);
			char x;
			if (read(q[0], &x, 1) != 1 || x != '!')
				_exit(5);
			_exit(0);
		}
		close(ready[0]);
		int c = accept(ls, NULL, NULL);
		CHECK(c >= 0, "accept");
		struct ucred uc;
		l = sizeof uc;
		CHECK(getsockopt(c, SOL_SOCKET, SO_PEERCRED, &uc, &l) == 0 && l == sizeof uc, "SO_PEERCRED");
		printf("pathname peer pid vs child: %s\n", uc.pid == pid ? "same" : "different");
		CHECK(recv_fds(c, buf, sizeof buf, 256, 0, got, 4, &n, &fl) == 1 && n == 1, "server receives the child's pipe");
		CHECK(n == 1 && write(got[0], "!", 1) == 1, "server writes into it");
		close_all(got, n);
		close(ready[1]);
		st = 0;
		CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0, "pathname child exit 0");
		close(c);
		close(ls);
		unlink(a.sun_path); /* natively a socket file was created */
	}

	return finish();
}
