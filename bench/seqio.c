/* Sequential file I/O: writes MIB MiB (default 100) to a new file PATH in 1 MiB write()s, closes
 * it, reads it back in 1 MiB read()s, and removes it. No fsync: this measures the file system's
 * write and read paths (page cache or memory), not a disk. Prints "WRITE READ" in MB/s (10^6
 * bytes per second); "error" and exit 1 on failure. Usage: seqio PATH [MIB] */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BLOCK (1 << 20)

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fail(const char *what)
{
	perror(what);
	printf("error\n");
	return 1;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: seqio PATH [MIB]\n");
		printf("error\n");
		return 1;
	}
	const char *path = argv[1];
	long mib = argc > 2 ? atol(argv[2]) : 100;
	if (mib <= 0)
		mib = 100;
	char *buf = malloc(BLOCK);
	if (!buf)
		return fail("malloc");
	for (int i = 0; i < BLOCK; i++)
		buf[i] = (char)(i * 7 + 1);
	double t0 = now();
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return fail(path);
	for (long i = 0; i < mib; i++)
		if (write(fd, buf, BLOCK) != BLOCK)
			return fail("write");
	if (close(fd) != 0)
		return fail("close");
	double t1 = now();
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return fail(path);
	long got = 0;
	ssize_t r;
	while ((r = read(fd, buf, BLOCK)) > 0)
		got += r;
	if (r < 0)
		return fail("read");
	close(fd);
	double t2 = now();
	unlink(path);
	if (got != mib * BLOCK) {
		fprintf(stderr, "seqio: read %ld bytes, wrote %ld\n", got, mib * BLOCK);
		printf("error\n");
		return 1;
	}
	double bytes = (double)mib * BLOCK;
	printf("%.0f %.0f\n", bytes / (t1 - t0) / 1e6, bytes / (t2 - t1) / 1e6);
	return 0;
}
