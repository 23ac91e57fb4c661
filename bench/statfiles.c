/* stat() of many files: creates the directory DIR (if missing) and COUNT (default 10000) empty
 * files in it (untimed), then stat()s each of them by path, PASSES times (default 1), and removes
 * them (and DIR if it made it). Prints nanoseconds per stat(); "error" and exit 1 on failure.
 * Usage: statfiles DIR [COUNT [PASSES]] */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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
		fprintf(stderr, "usage: statfiles DIR [COUNT [PASSES]]\n");
		printf("error\n");
		return 1;
	}
	long count = argc > 2 ? atol(argv[2]) : 10000;
	long passes = argc > 3 ? atol(argv[3]) : 1;
	if (count <= 0)
		count = 10000;
	if (passes <= 0)
		passes = 1;
	int made = mkdir(argv[1], 0755) == 0;
	if (!made && errno != EEXIST)
		return fail(argv[1]);
	char path[4096];
	for (long i = 0; i < count; i++) {
		snprintf(path, sizeof path, "%s/f%06ld", argv[1], i);
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
		if (fd < 0)
			return fail(path);
		close(fd);
	}
	struct stat st;
	double t0 = now();
	for (long p = 0; p < passes; p++)
		for (long i = 0; i < count; i++) {
			snprintf(path, sizeof path, "%s/f%06ld", argv[1], i);
			if (stat(path, &st) != 0)
				return fail(path);
		}
	double t1 = now();
	for (long i = 0; i < count; i++) {
		snprintf(path, sizeof path, "%s/f%06ld", argv[1], i);
		unlink(path);
	}
	if (made)
		rmdir(argv[1]);
	printf("%.0f\n", (t1 - t0) / (double)(count * passes) * 1e9);
	return 0;
}
