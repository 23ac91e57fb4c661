/* Checks pipes: read/write, EOF, EPIPE/SIGPIPE, O_NONBLOCK/EAGAIN, pipe2 flags, a 1 MiB transfer, dup2+exec capture, F_GETFL/F_SETFL. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define BUSYBOX "/bin/busybox"

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
	case ECHILD: return "ECHILD";
	case ENOENT: return "ENOENT";
	case ENOSYS: return "ENOSYS";
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

static pid_t xfork(void)
{
	fflush(stdout);
	return fork();
}

static const char *status_str(int st, char *buf, size_t n)
{
	if (WIFEXITED(st))
		snprintf(buf, n, "exited %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, n, "signaled %d", WTERMSIG(st));
	else
		snprintf(buf, n, "other 0x%x", st);
	return buf;
}

static int read_full(int fd, void *b, size_t n)
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

#define XFER (1u << 20)

static unsigned char pattern(size_t i)
{
	return (unsigned char)((i * 2654435761u) >> 13);
}

int main(void)
{
	char buf[256];
	int p[2];
	int st;

	/* Basic read/write. */
	CHECK(pipe(p) == 0, "pipe");
	CHECK(write(p[1], "hello pipe", 10) == 10, "write 10 bytes");
	memset(buf, 0, sizeof buf);
	CHECK(read(p[0], buf, sizeof buf) == 10 && memcmp(buf, "hello pipe", 10) == 0, "read 10 bytes back");
	/* Data is read in order across several writes, and a short read takes only part. */
	CHECK(write(p[1], "abc", 3) == 3 && write(p[1], "def", 3) == 3, "two writes");
	memset(buf, 0, sizeof buf);
	CHECK(read(p[0], buf, 4) == 4 && memcmp(buf, "abcd", 4) == 0, "partial read in order");
	CHECK(read(p[0], buf, sizeof buf) == 2 && memcmp(buf, "ef", 2) == 0, "rest of data");

	/* EOF once all writers are closed. */
	CHECK(write(p[1], "z", 1) == 1, "write before close");
	close(p[1]);
	CHECK(read(p[0], buf, sizeof buf) == 1, "buffered data still readable after writer close");
	CHECK(read(p[0], buf, sizeof buf) == 0, "read on empty pipe with no writers returns 0");
	close(p[0]);

	/* Write with no readers, SIGPIPE ignored: EPIPE. */
	CHECK(pipe(p) == 0, "pipe for EPIPE");
	close(p[0]);
	signal(SIGPIPE, SIG_IGN);
	errno = 0;
	CHECK(write(p[1], "x", 1) == -1 && errno == EPIPE, "write with no readers EPIPE");
	signal(SIGPIPE, SIG_DFL);
	close(p[1]);

	/* Same, with SIGPIPE at default, in a child: killed by SIGPIPE. */
	CHECK(pipe(p) == 0, "pipe for SIGPIPE");
	close(p[0]);
	pid_t pid = xfork();
	if (pid == 0) {
		signal(SIGPIPE, SIG_DFL);
		ssize_t r = write(p[1], "x", 1);
		(void)r;
		_exit(99);
	}
	close(p[1]);
	st = 0;
	CHECK(waitpid(pid, &st, 0) == pid, "waitpid SIGPIPE child");
	printf("writer with no readers: %s\n", status_str(st, buf, sizeof buf));

	/* O_NONBLOCK read on an empty pipe. */
	CHECK(pipe2(p, O_NONBLOCK) == 0, "pipe2 O_NONBLOCK");
	errno = 0;
	CHECK(read(p[0], buf, sizeof buf) == -1 && errno == EAGAIN, "nonblocking read on empty pipe EAGAIN");
	int fl = fcntl(p[0], F_GETFL);
	CHECK(fl >= 0 && (fl & O_NONBLOCK), "pipe2 O_NONBLOCK shows in F_GETFL");
	/* Fill the pipe without blocking; the last write fails with EAGAIN. */
	{
		static char chunk[4096];
		size_t total = 0;
		ssize_t r;
		while ((r = write(p[1], chunk, sizeof chunk)) > 0)
			total += (size_t)r;
		CHECK(r == -1 && errno == EAGAIN, "nonblocking write on full pipe EAGAIN");
		CHECK(total >= 4096, "pipe holds at least one page");
	}
	close(p[0]);
	close(p[1]);

	/* pipe2(O_CLOEXEC) vs pipe(). */
	CHECK(pipe2(p, O_CLOEXEC) == 0, "pipe2 O_CLOEXEC");
	CHECK((fcntl(p[0], F_GETFD) & FD_CLOEXEC) && (fcntl(p[1], F_GETFD) & FD_CLOEXEC), "pipe2 O_CLOEXEC sets FD_CLOEXEC on both ends");
	close(p[0]);
	close(p[1]);
	CHECK(pipe(p) == 0, "pipe plain");
	CHECK(fcntl(p[0], F_GETFD) == 0 && fcntl(p[1], F_GETFD) == 0, "plain pipe has no FD_CLOEXEC");

	/* F_GETFL access modes and F_SETFL O_NONBLOCK. */
	CHECK((fcntl(p[0], F_GETFL) & O_ACCMODE) == O_RDONLY, "read end is O_RDONLY");
	CHECK((fcntl(p[1], F_GETFL) & O_ACCMODE) == O_WRONLY, "write end is O_WRONLY");
	CHECK(!(fcntl(p[0], F_GETFL) & O_NONBLOCK), "no O_NONBLOCK initially");
	CHECK(fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK) == 0, "F_SETFL O_NONBLOCK");
	CHECK(fcntl(p[0], F_GETFL) & O_NONBLOCK, "F_GETFL shows O_NONBLOCK after F_SETFL");
	errno = 0;
	CHECK(read(p[0], buf, 1) == -1 && errno == EAGAIN, "read after F_SETFL O_NONBLOCK EAGAIN");
	CHECK(fcntl(p[0], F_SETFL, 0) == 0 && !(fcntl(p[0], F_GETFL) & O_NONBLOCK), "F_SETFL clears O_NONBLOCK");
	close(p[0]);
	close(p[1]);

	/* 1 MiB parent -> child with a checksum; the child reports back through a second pipe. */
	{
		int down[2], up[2];
		CHECK(pipe(down) == 0 && pipe(up) == 0, "pipes for transfer");
		pid = xfork();
		if (pid == 0) {
			close(down[1]);
			close(up[0]);
			uint64_t sum = 0, count = 0;
			int inorder = 1;
			char rb[7000];
			ssize_t r;
			for (;;) {
				r = read(down[0], rb, sizeof rb);
				if (r < 0 && errno == EINTR)
					continue;
				if (r <= 0)
					break;
				for (ssize_t i = 0; i < r; i++) {
					unsigned char c = (unsigned char)rb[i];
					if (c != pattern(count))
						inorder = 0;
					sum = sum * 31 + c;
					count++;
				}
			}
			uint64_t res[3] = { sum, count, (uint64_t)inorder };
			ssize_t w = write(up[1], res, sizeof res);
			_exit(w == (ssize_t)sizeof res ? 0 : 1);
		}
		close(down[0]);
		close(up[1]);
		unsigned char *data = malloc(XFER);
		uint64_t sum = 0;
		for (size_t i = 0; i < XFER; i++) {
			data[i] = pattern(i);
			sum = sum * 31 + data[i];
		}
		size_t off = 0;
		int wok = 1;
		/* Writes larger than the pipe capacity block until the child drains them. */
		size_t sizes[] = { 1, 4095, 100000, 65536, 300000, 12345 };
		int si = 0;
		while (off < XFER) {
			size_t n = sizes[si++ % 6];
			if (n > XFER - off)
				n = XFER - off;
			ssize_t w = write(down[1], data + off, n);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				wok = 0;
				break;
			}
			off += (size_t)w;
		}
		close(down[1]);
		CHECK(wok && off == XFER, "1 MiB written");
		uint64_t res[3] = { 0, 0, 0 };
		CHECK(read_full(up[0], res, sizeof res) == 0, "read child report");
		CHECK(res[1] == XFER, "child received 1 MiB");
		CHECK(res[2] == 1, "child received bytes in order");
		CHECK(res[0] == sum, "checksum matches");
		close(up[0]);
		st = 0;
		CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0, "transfer child exit 0");
		free(data);
	}

	/* dup2 onto stdout in a child, exec busybox echo, parent reads the output. */
	{
		CHECK(pipe(p) == 0, "pipe for exec capture");
		pid = xfork();
		if (pid == 0) {
			close(p[0]);
			if (dup2(p[1], 1) != 1)
				_exit(126);
			close(p[1]);
			char *argv[] = { BUSYBOX, "echo", "captured", "from", "echo", NULL };
			char *envp[] = { NULL };
			execve(argv[0], argv, envp);
			_exit(127);
		}
		close(p[1]);
		char out[256];
		size_t got = 0;
		ssize_t r;
		while (got < sizeof out - 1 && (r = read(p[0], out + got, sizeof out - 1 - got)) != 0) {
			if (r < 0) {
				if (errno == EINTR)
					continue;
				break;
			}
			got += (size_t)r;
		}
		out[got] = 0;
		close(p[0]);
		printf("captured output: %s", out);
		st = 0;
		CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0, "echo child exit 0");
	}

	/* A shell pipeline: data flows through two exec'd programs. */
	{
		CHECK(pipe(p) == 0, "pipe for pipeline");
		pid = xfork();
		if (pid == 0) {
			close(p[0]);
			dup2(p[1], 1);
			close(p[1]);
			char *argv[] = { BUSYBOX, "sh", "-c", "echo one two three | " BUSYBOX " wc -w", NULL };
			char *envp[] = { "PATH=/usr/bin:/bin", NULL };
			execve(argv[0], argv, envp);
			_exit(127);
		}
		close(p[1]);
		char out[64] = { 0 };
		ssize_t r = read(p[0], out, sizeof out - 1);
		(void)r;
		close(p[0]);
		/* busybox wc pads the number; strip spaces. */
		char *s = out;
		while (*s == ' ')
			s++;
		printf("pipeline output: %s", s);
		st = 0;
		CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0, "pipeline exit 0");
	}

	/* Pipe capacity: F_GETPIPE_SZ/F_SETPIPE_SZ, rounded to a power of two
	 * of pages, never below what is buffered. */
	{
		CHECK(pipe(p) == 0, "pipe for sizes");
		printf("default size %d\n", fcntl(p[0], F_GETPIPE_SZ));
		printf("set 5000 -> %d\n", fcntl(p[1], F_SETPIPE_SZ, 5000));
		printf("get %d\n", fcntl(p[0], F_GETPIPE_SZ));
		char big[8192];
		memset(big, 'b', sizeof big);
		fcntl(p[1], F_SETFL, O_NONBLOCK);
		printf("fill %zd\n", write(p[1], big, sizeof big));
		printf("more %zd errno=%s\n", write(p[1], big, 1), errno == EAGAIN ? "EAGAIN" : "?");
		errno = 0;
		int r = fcntl(p[1], F_SETPIPE_SZ, 4096);
		printf("shrink below buffered: %d %s\n", r, errno == EBUSY ? "EBUSY" : "?");
		CHECK(fcntl(p[1], F_SETPIPE_SZ, 65536) == 65536 && write(p[1], big, 1) == 1, "grown pipe takes more");
		int fd = open("/dev/null", O_RDONLY);
		errno = 0;
		r = fcntl(fd, F_GETPIPE_SZ);
		printf("not a pipe: %d %s\n", r, errno == EBADF ? "EBADF" : "?");
		close(fd);
		close(p[0]);
		close(p[1]);
	}

	if (failures) {
		printf("%d failures\n", failures);
		return 1;
	}
	printf("all ok\n");
	return 0;
}
