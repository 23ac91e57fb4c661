/* Checks sendfile, splice, tee, vmsplice and copy_file_range: file to pipe, socket and file, with
 * and without offset pointers (which move instead of the file position), pipe to pipe, tee's copy
 * that leaves the input alone, vmsplice both ways, the nonblocking EAGAIN and end-of-file cases,
 * the errno of each bad argument, and big copies (5 MiB, and this program's own file, which in
 * the sandbox comes from the host) checked byte for byte. The files live in a directory made in
 * the working directory and in /dev/shm (tmpfs). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <termios.h>
#include <unistd.h>

static int failures;

static const char *errname(int e)
{
	switch (e) {
	case 0: return "0";
	case EBADF: return "EBADF";
	case EINVAL: return "EINVAL";
	case ESPIPE: return "ESPIPE";
	case EAGAIN: return "EAGAIN";
	case EISDIR: return "EISDIR";
	case EPIPE: return "EPIPE";
	case EFAULT: return "EFAULT";
	case EXDEV: return "EXDEV";
	case EOVERFLOW: return "EOVERFLOW";
	case EFBIG: return "EFBIG";
	case EINTR: return "EINTR";
	default: return "E?";
	}
}

#define CHECK(cond, what)                                                          \
	do {                                                                       \
		if (cond)                                                          \
			printf("%s: ok\n", what);                                  \
		else {                                                             \
			printf("%s: FAIL (errno %s)\n", what, errname(errno));     \
			failures++;                                                \
		}                                                                  \
	} while (0)

#define FAILS(expr, e, what)                                                              \
	do {                                                                              \
		errno = 0;                                                                \
		long r_ = (long)(expr);                                                   \
		if (r_ == -1 && errno == (e))                                             \
			printf("%s: %s ok\n", what, errname(e));                          \
		else {                                                                    \
			printf("%s: FAIL (ret %ld errno %s)\n", what, r_, errname(errno)); \
			failures++;                                                       \
		}                                                                         \
	} while (0)

#define IS(expr, want, what)                                                               \
	do {                                                                               \
		errno = 0;                                                                 \
		long r_ = (long)(expr);                                                    \
		if (r_ == (long)(want))                                                    \
			printf("%s: %ld ok\n", what, r_);                                  \
		else {                                                                     \
			printf("%s: FAIL (ret %ld, want %ld, errno %s)\n", what, r_,       \
			       (long)(want), errname(errno));                              \
			failures++;                                                        \
		}                                                                          \
	} while (0)

static unsigned char pattern(size_t i)
{
	return (unsigned char)((i * 7 + i / 251) ^ 0x5a);
}

/* Makes `path` with `n` pattern bytes; returns an O_RDONLY fd. */
static int make_file(const char *path, size_t n)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		perror("open");
		exit(1);
	}
	unsigned char buf[8192];
	for (size_t at = 0; at < n;) {
		size_t k = n - at < sizeof buf ? n - at : sizeof buf;
		for (size_t i = 0; i < k; i++)
			buf[i] = pattern(at + i);
		if (write(fd, buf, k) != (ssize_t)k) {
			perror("write");
			exit(1);
		}
		at += k;
	}
	close(fd);
	return open(path, O_RDONLY);
}

/* Whether `n` bytes read from `fd` are the pattern from `from`. */
static int is_pattern(int fd, size_t from, size_t n)
{
	unsigned char buf[4096];
	size_t got = 0;
	while (got < n) {
		size_t want = n - got < sizeof buf ? n - got : sizeof buf;
		ssize_t r = read(fd, buf, want);
		if (r <= 0)
			return 0;
		for (ssize_t i = 0; i < r; i++)
			if (buf[i] != pattern(from + got + i))
				return 0;
		got += r;
	}
	return 1;
}

/* FNV-1a of a file's bytes from offset 0, and its length. */
static uint64_t digest(int fd, size_t *len)
{
	uint64_t h = 1469598103934665603ull;
	unsigned char buf[65536];
	ssize_t r;
	off_t at = 0;
	*len = 0;
	while ((r = pread(fd, buf, sizeof buf, at)) > 0) {
		for (ssize_t i = 0; i < r; i++)
			h = (h ^ buf[i]) * 1099511628211ull;
		at += r;
		*len += r;
	}
	return h;
}

static void test_sendfile(const char *dir)
{
	char src[300], dst[300];
	snprintf(src, sizeof src, "%s/src", dir);
	snprintf(dst, sizeof dst, "%s/dst", dir);
	int in = make_file(src, 1000);
	int p[2];
	CHECK(pipe(p) == 0, "pipe");

	IS(sendfile(p[1], in, NULL, 1000), 1000, "sendfile file->pipe");
	CHECK(is_pattern(p[0], 0, 1000), "pipe holds the file");
	IS(lseek(in, 0, SEEK_CUR), 1000, "file position moved");
	off_t off = 100;
	IS(sendfile(p[1], in, &off, 200), 200, "sendfile with an offset");
	IS(off, 300, "offset advanced");
	IS(lseek(in, 0, SEEK_CUR), 1000, "file position left alone");
	CHECK(is_pattern(p[0], 100, 200), "bytes from the offset");
	IS(sendfile(p[1], in, NULL, 50), 0, "sendfile at end of file");
	off = 990;
	IS(sendfile(p[1], in, &off, 500), 10, "sendfile stops at end of file");
	CHECK(is_pattern(p[0], 990, 10), "the last bytes");

	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
	off = 0;
	IS(sendfile(sv[0], in, &off, 1000), 1000, "sendfile file->unix socket");
	CHECK(is_pattern(sv[1], 0, 1000), "socket got the file");
	CHECK(write(sv[1], "unix bytes", 10) == 10, "peer writes");
	IS(splice(sv[0], NULL, p[1], NULL, 100, 0), 10, "splice unix socket->pipe");
	char ub[16] = {0};
	CHECK(read(p[0], ub, sizeof ub) == 10 && memcmp(ub, "unix bytes", 10) == 0, "pipe got the socket's bytes");
	FAILS(splice(sv[0], NULL, p[1], NULL, 100, SPLICE_F_NONBLOCK), EAGAIN, "splice from an idle unix socket, nonblocking");

	int out = open(dst, O_RDWR | O_CREAT | O_TRUNC, 0644);
	lseek(in, 0, SEEK_SET);
	IS(sendfile(out, in, NULL, 600), 600, "sendfile file->file");
	IS(sendfile(out, in, NULL, 6000), 400, "sendfile file->file, the rest");
	IS(lseek(out, 0, SEEK_CUR), 1000, "output position advanced");
	off = 500;
	IS(sendfile(out, in, &off, 100), 100, "sendfile file->file with an offset");
	struct stat st;
	CHECK(fstat(out, &st) == 0 && st.st_size == 1100, "output is 1100 bytes");
	lseek(out, 0, SEEK_SET);
	CHECK(is_pattern(out, 0, 1000) && is_pattern(out, 500, 100), "output bytes");

	/* Errors. */
	FAILS(sendfile(p[1], -1, NULL, 10), EBADF, "bad in fd");
	FAILS(sendfile(-1, in, NULL, 10), EBADF, "bad out fd");
	FAILS(sendfile(p[1], p[1], NULL, 10), EBADF, "in not readable");
	FAILS(sendfile(in, in, NULL, 10), EBADF, "out not writable");
	off = 0;
	FAILS(sendfile(out, p[0], &off, 10), ESPIPE, "offset on a pipe input");
	FAILS(sendfile(out, sv[1], NULL, 10), EINVAL, "socket input to a file");
	off = -1;
	FAILS(sendfile(out, in, &off, 10), EINVAL, "negative offset");
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY);
	FAILS(sendfile(out, dirfd, NULL, 10), EINVAL, "directory input");
	int app = open(dst, O_WRONLY | O_APPEND);
	off = 0;
	FAILS(sendfile(app, in, &off, 10), EINVAL, "O_APPEND output");
	int efd = open("/proc/version", O_RDONLY);
	char buf[64];
	FAILS(sendfile(p[1], efd, (off_t *)1, 10), EFAULT, "bad offset pointer");
	IS(sendfile(p[1], efd, NULL, 10), 10, "sendfile from /proc");
	CHECK(read(p[0], buf, 10) == 10 && memcmp(buf, "Linux vers", 10) == 0, "/proc bytes");

	/* Devices: /dev/zero gives and /dev/null takes; /dev/null gives nothing, /dev/full takes nothing. */
	int zero = open("/dev/zero", O_RDONLY), null = open("/dev/null", O_RDWR), full = open("/dev/full", O_WRONLY);
	IS(sendfile(p[1], zero, NULL, 100), 100, "sendfile /dev/zero->pipe");
	CHECK(read(p[0], buf, 64) == 64 && buf[0] == 0 && buf[63] == 0, "zeros");
	IS(splice(p[0], NULL, null, NULL, 100, 0), 36, "splice pipe->/dev/null");
	off = 0;
	IS(sendfile(null, in, &off, 1000), 1000, "sendfile file->/dev/null");
	FAILS(sendfile(p[1], null, NULL, 10), EINVAL, "sendfile from /dev/null");
	off = 0;
	FAILS(sendfile(full, in, &off, 10), EINVAL, "sendfile to /dev/full");
	close(zero);
	close(null);
	close(full);

	/* A full nonblocking pipe: EAGAIN; no reader: EPIPE. */
	fcntl(p[1], F_SETFL, O_NONBLOCK);
	char fill[4096] = {0};
	while (write(p[1], fill, sizeof fill) > 0)
		;
	off = 0;
	FAILS(sendfile(p[1], in, &off, 10), EAGAIN, "full nonblocking pipe");
	close(p[0]);
	signal(SIGPIPE, SIG_IGN);
	off = 0;
	FAILS(sendfile(p[1], in, &off, 10), EPIPE, "pipe without reader");
	close(p[1]);
	close(sv[0]);
	close(sv[1]);
	close(in);
	close(out);
	close(app);
	close(efd);
	close(dirfd);
	unlink(src);
	unlink(dst);
}

static void test_splice(const char *dir)
{
	char src[300], dst[300];
	snprintf(src, sizeof src, "%s/ssrc", dir);
	snprintf(dst, sizeof dst, "%s/sdst", dir);
	int in = make_file(src, 3000);
	int out = open(dst, O_RDWR | O_CREAT | O_TRUNC, 0644);
	int p[2], q[2];
	CHECK(pipe(p) == 0 && pipe(q) == 0, "pipes");

	loff_t off = 1000;
	IS(splice(in, &off, p[1], NULL, 1500, 0), 1500, "splice file->pipe");
	IS(off, 2500, "input offset advanced");
	IS(lseek(in, 0, SEEK_CUR), 0, "input position left alone");
	loff_t oo = 10;
	IS(splice(p[0], NULL, out, &oo, 1000, SPLICE_F_MOVE | SPLICE_F_MORE), 1000, "splice pipe->file");
	IS(oo, 1010, "output offset advanced");
	IS(lseek(out, 0, SEEK_CUR), 0, "output position left alone");
	CHECK(lseek(out, 10, SEEK_SET) == 10 && is_pattern(out, 1000, 1000), "file got the bytes at the offset");
	lseek(out, 0, SEEK_SET);
	IS(splice(p[0], NULL, out, NULL, 5000, 0), 500, "splice the rest to the file position");
	IS(lseek(out, 0, SEEK_CUR), 500, "output position moved");
	lseek(out, 0, SEEK_SET);
	CHECK(is_pattern(out, 2000, 500), "and the rest at the position");
	IS(splice(in, NULL, p[1], NULL, 100, 0), 100, "splice from the file position");
	IS(lseek(in, 0, SEEK_CUR), 100, "input position moved");

	/* pipe to pipe */
	IS(splice(p[0], NULL, q[1], NULL, 40, 0), 40, "splice pipe->pipe");
	IS(splice(p[0], NULL, q[1], NULL, 1000, 0), 60, "splice pipe->pipe, what is there");
	CHECK(is_pattern(q[0], 0, 100), "second pipe holds the bytes");

	/* nonblocking, EOF */
	FAILS(splice(p[0], NULL, q[1], NULL, 10, SPLICE_F_NONBLOCK), EAGAIN, "empty pipe, SPLICE_F_NONBLOCK");
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	FAILS(splice(p[0], NULL, out, NULL, 10, 0), EAGAIN, "empty O_NONBLOCK pipe to a file");
	fcntl(p[0], F_SETFL, 0);
	close(p[1]);
	IS(splice(p[0], NULL, out, NULL, 10, 0), 0, "no writers: end of file");
	IS(splice(p[0], NULL, q[1], NULL, 10, 0), 0, "no writers, pipe->pipe: end of file");
	close(p[0]);
	CHECK(pipe(p) == 0, "pipe again");

	/* errors */
	IS(splice(-1, NULL, -1, NULL, 0, 0), 0, "length 0 checks nothing");
	FAILS(splice(p[0], NULL, q[1], NULL, 10, 0x10), EINVAL, "unknown flag");
	FAILS(splice(-1, NULL, p[1], NULL, 10, 0), EBADF, "bad in fd");
	FAILS(splice(in, NULL, -1, NULL, 10, 0), EBADF, "bad out fd");
	off = 0;
	FAILS(splice(p[0], &off, out, NULL, 10, 0), ESPIPE, "offset on the input pipe");
	FAILS(splice(in, NULL, p[1], &off, 10, 0), ESPIPE, "offset on the output pipe");
	FAILS(splice(in, NULL, out, NULL, 10, 0), EINVAL, "no pipe");
	FAILS(splice(p[0], NULL, p[1], NULL, 10, 0), EINVAL, "a pipe into itself");
	FAILS(splice(p[1], NULL, q[1], NULL, 10, 0), EBADF, "input is a write end");
	FAILS(splice(in, NULL, p[0], NULL, 10, 0), EBADF, "output is a read end");
	int app = open(dst, O_WRONLY | O_APPEND);
	write(p[1], "x", 1);
	FAILS(splice(p[0], NULL, app, NULL, 10, 0), EINVAL, "O_APPEND output");
	off = -5;
	FAILS(splice(in, &off, p[1], NULL, 10, 0), EINVAL, "negative offset");
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY);
	FAILS(splice(dirfd, NULL, p[1], NULL, 10, 0), EINVAL, "directory input");
	FAILS(splice(in, (loff_t *)1, p[1], NULL, 10, 0), EFAULT, "bad offset pointer");

	/* A full pipe with SPLICE_F_NONBLOCK: EAGAIN. */
	fcntl(q[1], F_SETFL, O_NONBLOCK);
	char fill[4096] = {0};
	while (write(q[1], fill, sizeof fill) > 0)
		;
	fcntl(q[1], F_SETFL, 0);
	off = 0;
	FAILS(splice(in, &off, q[1], NULL, 10, SPLICE_F_NONBLOCK), EAGAIN, "full pipe, SPLICE_F_NONBLOCK");
	close(p[0]);
	close(p[1]);
	close(q[0]);
	close(q[1]);
	close(in);
	close(out);
	close(app);
	close(dirfd);
	unlink(src);
	unlink(dst);
}

static void test_tee_vmsplice(void)
{
	int p[2], q[2];
	char buf[32] = {0};
	CHECK(pipe(p) == 0 && pipe(q) == 0, "pipes");
	write(p[1], "hello tee", 9);
	IS(tee(p[0], q[1], 100, 0), 9, "tee");
	CHECK(read(q[0], buf, sizeof buf) == 9 && memcmp(buf, "hello tee", 9) == 0, "the copy");
	IS(tee(p[0], q[1], 5, 0), 5, "tee part");
	CHECK(read(p[0], buf, sizeof buf) == 9 && memcmp(buf, "hello tee", 9) == 0, "input still whole");
	CHECK(read(q[0], buf, sizeof buf) == 5 && memcmp(buf, "hello", 5) == 0, "the part");
	IS(tee(p[0], q[1], 0, 0), 0, "tee of 0");
	FAILS(tee(p[0], q[1], 10, 0x20), EINVAL, "tee unknown flag");
	FAILS(tee(p[0], p[1], 10, 0), EINVAL, "tee into the same pipe");
	FAILS(tee(p[0], q[1], 10, SPLICE_F_NONBLOCK), EAGAIN, "tee empty, nonblocking");
	int fd = open("/proc/self/status", O_RDONLY);
	FAILS(tee(fd, q[1], 10, 0), EINVAL, "tee from a file");
	FAILS(tee(-1, q[1], 10, 0), EBADF, "tee bad fd");
	FAILS(tee(p[1], q[1], 10, 0), EBADF, "tee from a write end");

	struct iovec iov[2] = { { "abc", 3 }, { "defg", 4 } };
	IS(vmsplice(p[1], iov, 2, 0), 7, "vmsplice into a pipe");
	CHECK(read(p[0], buf, sizeof buf) == 7 && memcmp(buf, "abcdefg", 7) == 0, "pipe got the iovecs");
	write(p[1], "0123456789", 10);
	char x[4], y[8];
	struct iovec out[2] = { { x, 4 }, { y, 8 } };
	IS(vmsplice(p[0], out, 2, 0), 10, "vmsplice out of a pipe");
	CHECK(memcmp(x, "0123", 4) == 0 && memcmp(y, "456789", 6) == 0, "iovecs got the bytes");
	FAILS(vmsplice(p[0], out, 2, SPLICE_F_NONBLOCK), EAGAIN, "vmsplice empty, nonblocking");
	IS(vmsplice(p[1], iov, 0, 0), 0, "vmsplice of nothing");
	FAILS(vmsplice(fd, iov, 2, 0), EBADF, "vmsplice on a file");
	FAILS(vmsplice(p[1], iov, 2, 0x40), EINVAL, "vmsplice unknown flag");
	FAILS(vmsplice(p[1], (struct iovec *)8, 2, 0), EFAULT, "vmsplice bad iovec array");
	close(p[1]);
	IS(vmsplice(p[0], out, 2, 0), 0, "vmsplice from a pipe without writers");
	IS(tee(p[0], q[1], 10, 0), 0, "tee from a pipe without writers");
	close(p[0]);
	close(q[0]);
	close(q[1]);
	close(fd);
}

static void test_copy_file_range(const char *dir, const char *self)
{
	char a[300], b[300], c[300];
	snprintf(a, sizeof a, "%s/ca", dir);
	snprintf(b, sizeof b, "%s/cb", dir);
	snprintf(c, sizeof c, "%s/cc", dir);
	const size_t big = 5 << 20;
	int in = make_file(a, big);
	int out = open(b, O_RDWR | O_CREAT | O_TRUNC, 0644);
	IS(copy_file_range(in, NULL, out, NULL, 1000, 0), 1000, "copy_file_range at the positions");
	IS(lseek(in, 0, SEEK_CUR), 1000, "input position moved");
	IS(lseek(out, 0, SEEK_CUR), 1000, "output position moved");
	loff_t oi = 1000, oo = 1000;
	size_t left = big - 1000;
	while (left > 0) {
		ssize_t n = copy_file_range(in, &oi, out, &oo, left, 0);
		if (n <= 0)
			break;
		left -= n;
	}
	IS(left, 0, "copy_file_range of 5 MiB with offsets");
	IS(oi, big, "input offset advanced");
	IS(lseek(in, 0, SEEK_CUR), 1000, "input position left alone");
	size_t la, lb;
	uint64_t da = digest(in, &la), db = digest(out, &lb);
	CHECK(la == big && lb == big && da == db, "copy has the same bytes");
	oi = big - 10;
	oo = 0;
	IS(copy_file_range(in, &oi, out, &oo, 100, 0), 10, "copy stops at end of input");
	IS(copy_file_range(in, &oi, out, &oo, 100, 0), 0, "copy at end of input");

	/* The same file: overlapping ranges are refused, others copy. */
	int rw = open(b, O_RDWR);
	oi = 1000;
	oo = 1100;
	FAILS(copy_file_range(rw, &oi, rw, &oo, 200, 0), EINVAL, "overlapping ranges of one file");
	oo = 8192;
	IS(copy_file_range(rw, &oi, rw, &oo, 200, 0), 200, "disjoint ranges of one file");
	CHECK(lseek(rw, 8192, SEEK_SET) == 8192 && is_pattern(rw, 1000, 200), "bytes copied within the file");

	/* Errors. */
	oi = oo = 0;
	FAILS(copy_file_range(in, &oi, out, &oo, 10, 1), EINVAL, "flags must be 0");
	FAILS(copy_file_range(-1, NULL, out, NULL, 10, 0), EBADF, "bad in fd");
	FAILS(copy_file_range(in, NULL, -1, NULL, 10, 0), EBADF, "bad out fd");
	FAILS(copy_file_range(out, NULL, in, NULL, 10, 0), EBADF, "output read-only");
	int wo = open(a, O_WRONLY);
	FAILS(copy_file_range(wo, NULL, out, NULL, 10, 0), EBADF, "input write-only");
	int app = open(b, O_WRONLY | O_APPEND);
	FAILS(copy_file_range(in, NULL, app, NULL, 10, 0), EBADF, "O_APPEND output");
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY);
	FAILS(copy_file_range(dirfd, NULL, out, NULL, 10, 0), EISDIR, "directory input");
	FAILS(copy_file_range(in, NULL, dirfd, NULL, 10, 0), EISDIR, "directory output");
	int p[2];
	CHECK(pipe(p) == 0, "pipe");
	FAILS(copy_file_range(in, NULL, p[1], NULL, 10, 0), EINVAL, "pipe output");
	FAILS(copy_file_range(p[0], NULL, out, NULL, 10, 0), EINVAL, "pipe input");
	oi = -1;
	FAILS(copy_file_range(in, &oi, out, NULL, 10, 0), EOVERFLOW, "negative offset (wraps)");
	oi = -4096;
	FAILS(copy_file_range(in, &oi, out, NULL, 10, 0), EINVAL, "negative offset");
	oi = INT64_MIN;
	FAILS(copy_file_range(in, &oi, out, NULL, 10, 0), EINVAL, "most negative offset");
	FAILS(copy_file_range(in, (loff_t *)1, out, NULL, 10, 0), EFAULT, "bad offset pointer");
	oi = 0;
	IS(copy_file_range(in, &oi, out, NULL, 0, 0), 0, "copy of 0");

	/* This program's own file (in the sandbox: the host's, behind the gofer), copied next to it:
	 * across filesystems Linux says EXDEV. */
	if (!self)
		goto done;
	int me = open(self, O_RDONLY);
	int cp = open(c, O_RDWR | O_CREAT | O_TRUNC, 0755);
	size_t lme, lcp;
	uint64_t dme = digest(me, &lme);
	ssize_t n, total = 0;
	while ((n = copy_file_range(me, NULL, cp, NULL, 1 << 30, 0)) > 0)
		total += n;
	CHECK(n == 0 && (size_t)total == lme, "copy_file_range of this program");
	CHECK(digest(cp, &lcp) == dme && lcp == lme, "its copy has the same bytes");
	CHECK(ftruncate(cp, 0) == 0 && lseek(me, 0, SEEK_SET) == 0 && lseek(cp, 0, SEEK_SET) == 0, "truncate");
	total = 0;
	while ((n = sendfile(cp, me, NULL, 1 << 20)) > 0)
		total += n;
	CHECK(n == 0 && (size_t)total == lme, "sendfile of this program");
	CHECK(digest(cp, &lcp) == dme && lcp == lme, "its sendfile copy has the same bytes");

	close(me);
	close(cp);
done:
	close(p[0]);
	close(p[1]);
	close(in);
	close(out);
	close(rw);
	close(wo);
	close(app);
	close(dirfd);
	unlink(a);
	unlink(b);
	unlink(c);
}

/* sendfile and splice to a terminal: the bytes come out of the master. */
static void test_pty(const char *dir)
{
	char src[300];
	snprintf(src, sizeof src, "%s/tsrc", dir);
	int in = make_file(src, 3000);
	int m = posix_openpt(O_RDWR | O_NOCTTY);
	CHECK(m >= 0 && grantpt(m) == 0 && unlockpt(m) == 0, "pty");
	int s = open(ptsname(m), O_RDWR | O_NOCTTY);
	struct termios tio;
	CHECK(s >= 0 && tcgetattr(s, &tio) == 0, "slave");
	cfmakeraw(&tio);
	tcsetattr(s, TCSANOW, &tio);
	off_t off = 0;
	IS(sendfile(s, in, &off, 2000), 2000, "sendfile file->pty slave");
	CHECK(is_pattern(m, 0, 2000), "master reads the file");
	int p[2];
	CHECK(pipe(p) == 0, "pipe");
	loff_t lo = 2000;
	IS(splice(in, &lo, p[1], NULL, 1000, 0), 1000, "splice file->pipe");
	IS(splice(p[0], NULL, s, NULL, 1000, 0), 1000, "splice pipe->pty slave");
	CHECK(is_pattern(m, 2000, 1000), "master reads the rest");
	off = 0;
	IS(sendfile(m, in, &off, 100), 100, "sendfile file->pty master");
	CHECK(is_pattern(s, 0, 100), "slave reads it");
	close(p[0]);
	close(p[1]);
	close(s);
	close(m);
	close(in);
	unlink(src);
}

/* sendfile and splice to a TCP connection over loopback (in the sandbox: a host socket). */
static void test_tcp(const char *dir)
{
	char src[300];
	snprintf(src, sizeof src, "%s/nsrc", dir);
	const size_t n = 100000;
	int in = make_file(src, n);
	int l = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof a;
	CHECK(l >= 0 && bind(l, (struct sockaddr *)&a, sizeof a) == 0 && listen(l, 1) == 0 &&
	      getsockname(l, (struct sockaddr *)&a, &al) == 0, "listen on loopback");
	int c = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(connect(c, (struct sockaddr *)&a, sizeof a) == 0, "connect");
	int sv = accept(l, NULL, NULL);
	CHECK(sv >= 0, "accept");
	off_t off = 0;
	size_t sent = 0;
	ssize_t k;
	while (sent < n && (k = sendfile(c, in, &off, n - sent)) > 0)
		sent += k;
	IS(sent, n, "sendfile file->tcp");
	CHECK(is_pattern(sv, 0, n), "peer got the file");
	int p[2];
	CHECK(pipe(p) == 0, "pipe");
	loff_t lo = 0;
	IS(splice(in, &lo, p[1], NULL, 5000, 0), 5000, "splice file->pipe");
	IS(splice(p[0], NULL, c, NULL, 5000, SPLICE_F_MORE), 5000, "splice pipe->tcp");
	CHECK(is_pattern(sv, 0, 5000), "peer got the spliced bytes");
	/* The other way: from the connection into a pipe, then a file. */
	char dst[300];
	snprintf(dst, sizeof dst, "%s/ndst", dir);
	int out = open(dst, O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(write(sv, "from the peer", 13) == 13, "peer writes");
	IS(splice(c, NULL, p[1], NULL, 100, 0), 13, "splice tcp->pipe");
	IS(splice(p[0], NULL, out, NULL, 100, 0), 13, "splice pipe->file");
	char got[16] = {0};
	CHECK(pread(out, got, sizeof got, 0) == 13 && memcmp(got, "from the peer", 13) == 0, "file holds the peer's bytes");
	fcntl(c, F_SETFL, O_NONBLOCK);
	FAILS(splice(c, NULL, p[1], NULL, 100, 0), EAGAIN, "splice from an idle O_NONBLOCK connection");
	fcntl(c, F_SETFL, 0);
	shutdown(sv, SHUT_WR);
	IS(splice(c, NULL, p[1], NULL, 100, 0), 0, "splice after the peer's shutdown: end of file");
	close(out);
	unlink(dst);
	close(p[0]);
	close(p[1]);
	close(sv);
	close(c);
	close(l);
	close(in);
	unlink(src);
}

/* RLIMIT_FSIZE cuts a copy short at the limit; the next one fails with EFBIG. */
static void test_fsize(const char *dir)
{
	char src[300], dst[300];
	snprintf(src, sizeof src, "%s/fsrc", dir);
	snprintf(dst, sizeof dst, "%s/fdst", dir);
	int in = make_file(src, 3000);
	int out = open(dst, O_RDWR | O_CREAT | O_TRUNC, 0644);
	struct rlimit old, lim;
	getrlimit(RLIMIT_FSIZE, &old);
	lim = old;
	lim.rlim_cur = 1500;
	signal(SIGXFSZ, SIG_IGN);
	CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0, "RLIMIT_FSIZE 1500");
	IS(copy_file_range(in, NULL, out, NULL, 3000, 0), 1500, "copy_file_range up to the limit");
	FAILS(copy_file_range(in, NULL, out, NULL, 3000, 0), EFBIG, "copy_file_range past the limit");
	CHECK(ftruncate(out, 0) == 0 && lseek(out, 0, SEEK_SET) == 0, "truncate");
	off_t off = 0;
	IS(sendfile(out, in, &off, 3000), 1500, "sendfile up to the limit");
	IS(off, 1500, "offset moved by what was written");
	FAILS(sendfile(out, in, &off, 3000), EFBIG, "sendfile past the limit");
	setrlimit(RLIMIT_FSIZE, &old);
	signal(SIGXFSZ, SIG_DFL);
	close(in);
	close(out);
	unlink(src);
	unlink(dst);
}

static void on_alarm(int sig)
{
	(void)sig;
}

/* A splice waiting on an empty pipe is interrupted by a handler without SA_RESTART: EINTR. */
static void test_interrupt(void)
{
	int p[2], q[2];
	CHECK(pipe(p) == 0 && pipe(q) == 0, "pipes");
	struct sigaction sa = { .sa_handler = on_alarm };
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = { .it_value = { 0, 50000 } };
	setitimer(ITIMER_REAL, &it, NULL);
	FAILS(splice(p[0], NULL, q[1], NULL, 10, 0), EINTR, "splice interrupted by a signal");
	setitimer(ITIMER_REAL, &it, NULL);
	FAILS(tee(p[0], q[1], 10, 0), EINTR, "tee interrupted by a signal");
	signal(SIGALRM, SIG_DFL);
	close(p[0]);
	close(p[1]);
	close(q[0]);
	close(q[1]);
}

int main(int argc, char **argv)
{
	(void)argc;
	setvbuf(stdout, NULL, _IONBF, 0);
	const char *bases[] = { ".", "/dev/shm" };
	test_tee_vmsplice();
	test_interrupt();
	for (int i = 0; i < 2; i++) {
		char dir[256];
		snprintf(dir, sizeof dir, "%s/rvisor-splice-XXXXXX", bases[i]);
		if (!mkdtemp(dir)) {
			perror("mkdtemp");
			return 1;
		}
		printf("== %s\n", i == 0 ? "cwd" : "shm");
		test_sendfile(dir);
		test_splice(dir);
		test_copy_file_range(dir, i == 0 ? argv[0] : NULL);
		test_fsize(dir);
		if (i == 0) {
			test_pty(dir);
			test_tcp(dir);
		}
		rmdir(dir);
	}
	printf("failures: %d\n", failures);
	return failures != 0;
}
