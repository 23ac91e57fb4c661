/* Checks pipe edge cases around the buffer: bytes keep their order and value across many
 * wrap-arounds of mixed-size writes and reads (also after F_SETPIPE_SZ with data queued), a
 * null write succeeds without readers, a write whose buffer turns bad part-way keeps whole
 * pages of it, a read into a bad buffer leaves the bytes queued, PIPE_BUF atomicity and
 * partial writes under O_NONBLOCK, readv/writev across segments, FIONREAD, /dev/zero reads.
 * Linux counts a pipe's capacity in page slots, not bytes: small writes fill up the last
 * page, F_SETPIPE_SZ refuses fewer slots than are in use, poll is writable while a slot is
 * free (and POLLOUT may come with POLLERR). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static int failures;

static const char *errname(int e)
{
	switch (e) {
	case 0: return "0";
	case EPIPE: return "EPIPE";
	case EAGAIN: return "EAGAIN";
	case EFAULT: return "EFAULT";
	case EBUSY: return "EBUSY";
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

/* Byte i of the stream. */
static unsigned char pat(uint64_t i)
{
	return (unsigned char)(i * 131 + (i >> 11) * 7 + 3);
}

static size_t queued(int fd)
{
	int n = -1;
	if (ioctl(fd, FIONREAD, &n) != 0)
		return (size_t)-1;
	return (size_t)n;
}

int main(void)
{
	int p[2];
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	long page = sysconf(_SC_PAGESIZE);

	/* A writer child streams 24 MiB in sizes 1..70000 (writev of two pieces now and then);
	 * the parent reads in other odd sizes (readv now and then) and checks every byte. */
	{
		const uint64_t total = 24u << 20;
		CHECK(pipe(p) == 0, "pipe for the stream");
		fflush(stdout);
		pid_t c = fork();
		if (c == 0) {
			close(p[0]);
			unsigned char *buf = malloc(70000);
			uint64_t off = 0, k = 0;
			while (off < total) {
				size_t n = (size_t)((k * 7919) % 70000) + 1;
				if (n > total - off)
					n = (size_t)(total - off);
				for (size_t i = 0; i < n; i++)
					buf[i] = pat(off + i);
				ssize_t w;
				if (k % 5 == 0 && n > 1) {
					struct iovec iov[2] = { { buf, n / 3 }, { buf + n / 3, n - n / 3 } };
					w = writev(p[1], iov, 2);
				} else {
					w = write(p[1], buf, n);
				}
				if (w != (ssize_t)n)
					_exit(2);
				off += n;
				k++;
			}
			_exit(0);
		}
		close(p[1]);
		unsigned char *buf = malloc(100000);
		uint64_t off = 0, k = 0;
		int bad = 0;
		for (;;) {
			size_t n = (size_t)((k * 104729) % 100000) + 1;
			ssize_t r;
			if (k % 3 == 0 && n > 2) {
				struct iovec iov[3] = { { buf, 1 }, { buf + 1, n / 2 }, { buf + 1 + n / 2, n - 1 - n / 2 } };
				r = readv(p[0], iov, 3);
			} else {
				r = read(p[0], buf, n);
			}
			if (r <= 0)
				break;
			for (ssize_t i = 0; i < r; i++)
				if (buf[i] != pat(off + (uint64_t)i))
					bad++;
			off += (uint64_t)r;
			k++;
		}
		int st;
		waitpid(c, &st, 0);
		printf("stream: %llu bytes, %d wrong, writer %s\n", (unsigned long long)off, bad,
		       WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "ok" : "failed");
		close(p[0]);
		free(buf);
	}

	/* Wrap the buffer, then resize it with bytes queued: they stay, in order. */
	{
		CHECK(pipe(p) == 0, "pipe for resize");
		unsigned char w[40000], r[65536];
		for (size_t i = 0; i < sizeof w; i++)
			w[i] = pat(i);
		CHECK(write(p[1], w, sizeof w) == (ssize_t)sizeof w, "first 40000");
		CHECK(read(p[0], r, 30000) == 30000 && memcmp(r, w, 30000) == 0, "read 30000");
		CHECK(write(p[1], w, sizeof w) == (ssize_t)sizeof w, "second 40000 wraps");
		printf("queued %zu\n", queued(p[0]));
		errno = 0;
		int sz = fcntl(p[1], F_SETPIPE_SZ, 32768);
		printf("shrink below queued: %d %s\n", sz, errname(errno));
		printf("grow: %d\n", fcntl(p[1], F_SETPIPE_SZ, 1 << 17));
		CHECK(read(p[0], r, 10000) == 10000 && memcmp(r, w + 30000, 10000) == 0, "tail of first");
		CHECK(read(p[0], r, sizeof r) == 40000 && memcmp(r, w, 40000) == 0, "second whole");
		printf("shrink when empty: %d\n", fcntl(p[1], F_SETPIPE_SZ, 4096));
		fcntl(p[1], F_SETFL, O_NONBLOCK);
		printf("fill small pipe: %zd\n", write(p[1], w, sizeof w));
		close(p[0]);
		close(p[1]);
	}

	/* A null write succeeds even without readers; a 1-byte one is EPIPE. */
	{
		CHECK(pipe(p) == 0, "pipe for null write");
		close(p[0]);
		errno = 0;
		ssize_t r = write(p[1], "", 0);
		printf("null write without readers: %zd %s\n", r, errname(errno));
		errno = 0;
		r = write(p[1], "x", 1);
		printf("write without readers: %zd %s\n", r, errname(errno));
		close(p[1]);
	}

	/* Bad buffers. */
	{
		unsigned char *m = mmap(NULL, 3 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		for (long i = 0; i < 2 * page; i++)
			m[i] = pat((uint64_t)i);
		mprotect(m + 2 * page, page, PROT_NONE);
		unsigned char r[8192];

		CHECK(pipe(p) == 0, "pipe for bad buffers");
		fcntl(p[0], F_SETFL, O_NONBLOCK);
		errno = 0;
		ssize_t n = write(p[1], m + page, 2 * page);
		printf("write, second page bad: %zd %s\n", n, errname(errno));
		errno = 0;
		n = write(p[1], m + 100, 2 * page);
		printf("write, bad from byte %ld: %zd %s\n", 2 * page - 100, n, errname(errno));
		errno = 0;
		n = write(p[1], m + 2 * page, 10);
		printf("write, all bad: %zd %s\n", n, errname(errno));
		printf("queued %zu\n", queued(p[0]));
		errno = 0;
		n = read(p[0], m + 2 * page, 10);
		printf("read into bad buffer: %zd %s, queued %zu\n", n, errname(errno), queued(p[0]));
		n = read(p[0], r, sizeof r);
		printf("then read %zd, first page the same %d, second %d\n", n, memcmp(r, m + page, (size_t)page) == 0, memcmp(r + page, m + 100, (size_t)page) == 0);
		close(p[0]);
		close(p[1]);
	}

	/* O_NONBLOCK: a write of at most PIPE_BUF goes in whole or not at all, a bigger one
	 * takes what fits. */
	{
		CHECK(pipe(p) == 0, "pipe for nonblock");
		fcntl(p[1], F_SETFL, O_NONBLOCK);
		static unsigned char big[200000];
		ssize_t n = write(p[1], big, 65536 - 100);
		printf("nearly full: %zd\n", n);
		errno = 0;
		n = write(p[1], big, 4096);
		printf("PIPE_BUF write into 100 bytes: %zd %s\n", n, errname(errno));
		n = write(p[1], big, 5000);
		printf("bigger write into 100 bytes: %zd\n", n);
		errno = 0;
		n = write(p[1], big, 1);
		printf("full: %zd %s\n", n, errname(errno));
		unsigned char r[5000];
		n = read(p[0], r, 5000);
		printf("read %zd, queued %zu\n", n, queued(p[0]));
		n = write(p[1], big, sizeof big);
		printf("big write takes %zd\n", n);
		close(p[0]);
		close(p[1]);
	}

	/* Slots. */
	{
		static unsigned char b[8192];
		struct pollfd pf;
		CHECK(pipe(p) == 0, "pipe for slots");
		fcntl(p[1], F_SETFL, O_NONBLOCK);
		write(p[1], b, 1);
		write(p[1], b, 1);
		write(p[1], b, 1);
		write(p[1], b, 4096);
		write(p[1], b, 10);
		printf("3 slots: queued %zu\n", queued(p[0]));
		errno = 0;
		int r = fcntl(p[1], F_SETPIPE_SZ, 8192);
		printf("resize to 2 slots: %d %s\n", r, errname(errno));
		printf("resize to 4 slots: %d\n", fcntl(p[1], F_SETPIPE_SZ, 16384));
		printf("fill: %zd\n", write(p[1], b, 4095));
		pf = (struct pollfd){ .fd = p[1], .events = POLLOUT };
		printf("full slots, %zu bytes queued: poll %d revents 0x%x\n", queued(p[0]), poll(&pf, 1, 0), pf.revents);
		printf("one byte fills up the last slot: %zd\n", write(p[1], b, 1));
		errno = 0;
		ssize_t n = write(p[1], b, 2);
		printf("two do not fit: %zd %s\n", n, errname(errno));
		close(p[0]);
		pf = (struct pollfd){ .fd = p[1], .events = POLLOUT };
		poll(&pf, 1, 0);
		printf("full, no reader: revents 0x%x\n", pf.revents);
		close(p[1]);
		CHECK(pipe(p) == 0, "pipe for poll");
		close(p[0]);
		pf = (struct pollfd){ .fd = p[1], .events = POLLOUT };
		poll(&pf, 1, 0);
		printf("empty, no reader: revents 0x%x\n", pf.revents);
		close(p[1]);
	}

	/* /dev/zero fills whatever buffer it is given, across pages. */
	{
		int z = open("/dev/zero", O_RDONLY);
		static unsigned char b[3 * 4096 + 77];
		memset(b, 0xaa, sizeof b);
		ssize_t n = read(z, b + 5, sizeof b - 5);
		int nz = 0;
		for (size_t i = 0; i < sizeof b; i++)
			nz += b[i] != 0;
		printf("/dev/zero read %zd, nonzero left %d\n", n, nz);
		close(z);
	}

	if (failures) {
		printf("%d failures\n", failures);
		return 1;
	}
	printf("all ok\n");
	return 0;
}
