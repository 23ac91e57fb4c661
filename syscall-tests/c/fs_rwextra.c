/* Checks the smaller file calls: preadv2/pwritev2 (offset -1, RWF_APPEND, RWF_NOWAIT, flag
 * errors), posix_fadvise, readahead, sync_file_range, close_range (closing, CLOSE_RANGE_CLOEXEC,
 * errors), mincore on anonymous memory, lseek SEEK_DATA/SEEK_HOLE, and name_to_handle_at's
 * argument errors. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
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
	case ENOMEM: return "ENOMEM";
	case EFAULT: return "EFAULT";
	case ENXIO: return "ENXIO";
	case ENOENT: return "ENOENT";
	case EOPNOTSUPP: return "EOPNOTSUPP";
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

static void test_rw2(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	int p[2];
	char buf[32] = {0};
	struct iovec w = { "0123456789", 10 }, r = { buf, sizeof buf };
	CHECK(fd >= 0 && pipe(p) == 0, "file and pipe");
	IS(pwritev2(fd, &w, 1, 0, 0), 10, "pwritev2 at 0");
	IS(lseek(fd, 0, SEEK_CUR), 0, "position left alone");
	IS(pwritev2(fd, &w, 1, -1, 0), 10, "pwritev2 at the position");
	IS(lseek(fd, 0, SEEK_CUR), 10, "position moved");
	IS(pwritev2(fd, &w, 1, 0, RWF_APPEND), 10, "pwritev2 RWF_APPEND with an offset");
	IS(lseek(fd, 0, SEEK_CUR), 10, "position still left alone");
	IS(lseek(fd, 0, SEEK_END), 20, "appended at the end");
	lseek(fd, 3, SEEK_SET);
	IS(pwritev2(fd, &w, 1, -1, RWF_APPEND), 10, "pwritev2 RWF_APPEND at the position");
	IS(lseek(fd, 0, SEEK_CUR), 30, "position follows the append");
	IS(pwritev2(fd, &w, 1, 30, RWF_DSYNC | RWF_SYNC | RWF_HIPRI), 10, "pwritev2 with sync flags");
	IS(preadv2(fd, &r, 1, 5, 0), 32, "preadv2 at 5");
	CHECK(memcmp(buf, "56789012", 8) == 0, "the bytes at 5");
	lseek(fd, 35, SEEK_SET);
	IS(preadv2(fd, &r, 1, -1, 0), 5, "preadv2 at the position");
	IS(lseek(fd, 0, SEEK_CUR), 40, "read moved the position");
	IS(preadv2(fd, &r, 1, 0, RWF_NOWAIT), 32, "preadv2 RWF_NOWAIT on a file");
	FAILS(preadv2(fd, &r, 1, -2, 0), EINVAL, "offset -2");
	FAILS(preadv2(fd, &r, 1, 0, 0x10000), EOPNOTSUPP, "unknown flag");
	FAILS(pwritev2(fd, &w, 1, 0, RWF_APPEND | 0x20), EINVAL, "RWF_APPEND with RWF_NOAPPEND");
	struct iovec none = { buf, 0 };
	IS(preadv2(fd, &none, 1, 0, 0x10000), 0, "nothing to read checks no flags");
	FAILS(preadv2(p[0], &r, 1, -1, RWF_NOWAIT), EAGAIN, "preadv2 RWF_NOWAIT on an empty pipe");
	FAILS(preadv2(p[0], &r, 1, 0, 0), ESPIPE, "preadv2 at an offset of a pipe");
	IS(pwritev2(p[1], &w, 1, -1, 0), 10, "pwritev2 into a pipe");
	IS(preadv2(p[0], &r, 1, -1, RWF_NOWAIT), 10, "preadv2 RWF_NOWAIT with data");
	FAILS(preadv2(-1, &r, 1, 0, 0), EBADF, "bad fd");
	FAILS(preadv2(p[1], &r, 1, -1, 0), EBADF, "preadv2 of a write end");
	close(fd);
	close(p[0]);
	close(p[1]);
}

static void test_advice(const char *path)
{
	int fd = open(path, O_RDONLY);
	int wo = open(path, O_WRONLY);
	int p[2];
	CHECK(fd >= 0 && pipe(p) == 0, "file and pipe");
	IS(posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL), 0, "fadvise SEQUENTIAL");
	IS(posix_fadvise(fd, 0, 100, POSIX_FADV_DONTNEED), 0, "fadvise DONTNEED");
	IS(posix_fadvise(fd, 0, 100, POSIX_FADV_WILLNEED), 0, "fadvise WILLNEED");
	IS(posix_fadvise(fd, 0, 0, 99), EINVAL, "fadvise bad advice");
	IS(posix_fadvise(fd, 0, -1, POSIX_FADV_NORMAL), EINVAL, "fadvise negative length");
	IS(posix_fadvise(p[0], 0, 0, POSIX_FADV_NORMAL), ESPIPE, "fadvise on a pipe");
	IS(posix_fadvise(-1, 0, 0, POSIX_FADV_NORMAL), EBADF, "fadvise bad fd");
	IS(readahead(fd, 0, 4096), 0, "readahead");
	FAILS(readahead(p[0], 0, 4096), EINVAL, "readahead of a pipe");
	FAILS(readahead(wo, 0, 4096), EBADF, "readahead of a write-only fd");
	FAILS(readahead(-1, 0, 4096), EBADF, "readahead bad fd");
	IS(sync_file_range(wo, 0, 0, SYNC_FILE_RANGE_WRITE), 0, "sync_file_range");
	IS(sync_file_range(fd, 0, 10, SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER), 0,
	   "sync_file_range all flags");
	FAILS(sync_file_range(fd, 0, 0, 8), EINVAL, "sync_file_range bad flag");
	FAILS(sync_file_range(fd, -1, 0, 0), EINVAL, "sync_file_range negative offset");
	FAILS(sync_file_range(fd, 10, -20, 0), EINVAL, "sync_file_range negative length");
	FAILS(sync_file_range(p[1], 0, 0, 0), ESPIPE, "sync_file_range of a pipe");
	FAILS(sync_file_range(-1, 0, 0, 0), EBADF, "sync_file_range bad fd");

	/* A file written without gaps: all data, one hole at the end. */
	IS(lseek(fd, 0, SEEK_DATA), 0, "SEEK_DATA from 0");
	IS(lseek(fd, 0, SEEK_HOLE), 40, "SEEK_HOLE from 0");
	IS(lseek(fd, 25, SEEK_HOLE), 40, "SEEK_HOLE from 25");
	FAILS(lseek(fd, 40, SEEK_DATA), ENXIO, "SEEK_DATA at the end");
	FAILS(lseek(fd, -1, SEEK_DATA), ENXIO, "SEEK_DATA before the start");
	FAILS(lseek(p[0], 0, SEEK_DATA), ESPIPE, "SEEK_DATA of a pipe");
	close(fd);
	close(wo);
	close(p[0]);
	close(p[1]);
}

static void test_close_range(void)
{
	int base = open("/dev/null", O_RDONLY);
	for (int fd = 40; fd <= 45; fd++)
		dup2(base, fd);
	IS(close_range(41, 43, 0), 0, "close_range 41..43");
	CHECK(fcntl(40, F_GETFD) == 0 && fcntl(44, F_GETFD) == 0, "40 and 44 still open");
	FAILS(fcntl(41, F_GETFD), EBADF, "41 closed");
	FAILS(fcntl(43, F_GETFD), EBADF, "43 closed");
	IS(close_range(44, 45, CLOSE_RANGE_CLOEXEC), 0, "close_range CLOEXEC");
	IS(fcntl(44, F_GETFD), FD_CLOEXEC, "44 is close-on-exec");
	IS(fcntl(45, F_GETFD), FD_CLOEXEC, "45 is close-on-exec");
	IS(close_range(40, 40, CLOSE_RANGE_UNSHARE), 0, "close_range UNSHARE");
	FAILS(fcntl(40, F_GETFD), EBADF, "40 closed");
	IS(close_range(1000, ~0U, 0), 0, "close_range of nothing open");
	FAILS(close_range(45, 44, 0), EINVAL, "first after last");
	FAILS(close_range(44, 45, 0x1), EINVAL, "unknown flag");
	IS(close_range(44, ~0U, 0), 0, "close_range to the end");
	FAILS(fcntl(45, F_GETFD), EBADF, "45 closed");
	close(base);
}

static void test_mincore(void)
{
	long pg = sysconf(_SC_PAGESIZE);
	unsigned char vec[8];
	char *m = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(m != MAP_FAILED, "mmap 4 pages");
	m[0] = 1;
	m[2 * pg] = 1;
	memset(vec, 9, sizeof vec);
	IS(mincore(m, 4 * pg, vec), 0, "mincore");
	/* Only the touched pages: Linux counts the others absent, the sandbox maps a touched
	 * page's neighbours with it. */
	printf("touched pages resident: %d %d\n", vec[0] & 1, vec[2] & 1);
	IS(mincore(m, pg + 1, vec), 0, "mincore of a partial page");
	FAILS(mincore(m + 1, pg, vec), EINVAL, "unaligned start");
	FAILS(mincore(m, pg, (unsigned char *)8), EFAULT, "bad vector");
	IS(mincore(m, 0, vec), 0, "mincore of nothing");
	munmap(m + pg, pg);
	FAILS(mincore(m, 3 * pg, vec), ENOMEM, "range with a hole");
	munmap(m, 4 * pg);
	FAILS(mincore(m, pg, vec), ENOMEM, "unmapped range");
}

static void test_handles(void)
{
	struct {
		unsigned int bytes;
		int type;
		unsigned char h[128];
	} fh = { 128, 0, {0} };
	int mnt;
	FAILS(syscall(SYS_name_to_handle_at, AT_FDCWD, "/", &fh, &mnt, 0x8000), EINVAL, "name_to_handle_at bad flag");
	FAILS(syscall(SYS_name_to_handle_at, AT_FDCWD, "/nonexistent-rvisor", &fh, &mnt, 0), ENOENT,
	      "name_to_handle_at of a missing file");
}

int main(void)
{
	char dir[] = "./rvisor-rwextra-XXXXXX", path[64];
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(path, sizeof path, "%s/f", dir);
	test_rw2(path);
	test_advice(path);
	test_close_range();
	test_mincore();
	test_handles();
	unlink(path);
	rmdir(dir);
	printf("failures: %d\n", failures);
	return failures != 0;
}
