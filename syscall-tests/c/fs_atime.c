/* Checks access times under the default relatime: a read moves an access time that is not newer
 * than the file's last modification or change, and leaves one that is newer alone. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int failures;

#define CHECK(cond, what)                                                   \
	do {                                                                \
		if (cond)                                                   \
			printf("%s: ok\n", what);                           \
		else {                                                      \
			printf("%s: FAIL (errno %d)\n", what, errno);       \
			failures++;                                         \
		}                                                           \
	} while (0)

int main(void)
{
	char dir[] = "/tmp/atimeXXXXXX", path[64], buf[16];
	struct stat st;
	CHECK(mkdtemp(dir) != NULL, "mkdtemp");
	snprintf(path, sizeof path, "%s/f", dir);
	int fd = open(path, O_RDWR | O_CREAT, 0644);
	CHECK(fd >= 0 && write(fd, "data", 4) == 4, "create a file");
	time_t start = time(NULL);

	/* Access and modification time in 2020: the next read moves the access time to now. */
	struct timespec old[2] = { { 1577836800, 0 }, { 1577836800, 0 } };
	CHECK(futimens(fd, old) == 0, "set both times to 2020");
	CHECK(pread(fd, buf, sizeof buf, 0) == 4, "read");
	CHECK(fstat(fd, &st) == 0 && st.st_atim.tv_sec >= start && st.st_mtim.tv_sec == 1577836800,
	      "the read moved the access time, not the modification time");

	/* An access time newer than both other times stays as it is. */
	struct timespec later[2] = { { start + 3600, 0 }, { 0, UTIME_OMIT } };
	CHECK(futimens(fd, later) == 0, "set the access time an hour ahead");
	CHECK(pread(fd, buf, sizeof buf, 0) == 4, "read again");
	CHECK(fstat(fd, &st) == 0 && st.st_atim.tv_sec == start + 3600 && st.st_atim.tv_nsec == 0,
	      "a newer access time is left alone");

	/* An access time older than the last change (the write; the futimens too) moves on the next read. */
	struct timespec back[2] = { { 1577836800, 0 }, { 0, UTIME_OMIT } };
	CHECK(futimens(fd, back) == 0 && pwrite(fd, "D", 1, 0) == 1, "access time back to 2020, then a write");
	CHECK(fstat(fd, &st) == 0 && st.st_atim.tv_sec == 1577836800, "the write left the access time");
	CHECK(pread(fd, buf, sizeof buf, 0) == 4 && fstat(fd, &st) == 0 && st.st_atim.tv_sec >= start,
	      "the read after it moved the access time");
	close(fd);
	unlink(path);
	rmdir(dir);
	printf("%s\n", failures ? "FAILED" : "all ok");
	return failures != 0;
}
