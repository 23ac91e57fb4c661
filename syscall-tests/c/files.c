/* Checks file syscalls on argv[1]: open/read/fstat/lseek/pread/readv/close, ENOENT, EFAULT, getcwd, uname. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <unistd.h>

static int failures;

static const char *errname(int e)
{
	switch (e) {
	case 0: return "0";
	case ENOENT: return "ENOENT";
	case EFAULT: return "EFAULT";
	case EBADF: return "EBADF";
	case EINVAL: return "EINVAL";
	case EACCES: return "EACCES";
	case ENOTDIR: return "ENOTDIR";
	case EISDIR: return "EISDIR";
	case ESPIPE: return "ESPIPE";
	case ERANGE: return "ERANGE";
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

int main(int argc, char **argv)
{
	if (argc < 2) {
		printf("usage: files FILE\n");
		return 1;
	}
	int fd = open(argv[1], O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0, "open");
	if (fd < 0)
		return 1;
	printf("first fd is 3: %s\n", fd == 3 ? "yes" : "no");

	struct stat st;
	CHECK(fstat(fd, &st) == 0, "fstat");
	printf("size=%lld regular=%s\n", (long long)st.st_size, S_ISREG(st.st_mode) ? "yes" : "no");

	char buf[65536];
	ssize_t n = read(fd, buf, sizeof buf);
	CHECK(n == st.st_size, "read whole file");
	unsigned sum = 0;
	for (ssize_t i = 0; i < n; i++)
		sum = sum * 33 + (unsigned char)buf[i];
	printf("content hash=%08x\n", sum);
	printf("first line: %.*s\n", (int)(strchr(buf, '\n') ? strchr(buf, '\n') - buf : 0), buf);
	CHECK(read(fd, buf, sizeof buf) == 0, "read at EOF returns 0");

	CHECK(lseek(fd, 0, SEEK_CUR) == st.st_size, "lseek SEEK_CUR at end");
	CHECK(lseek(fd, -5, SEEK_END) == st.st_size - 5, "lseek SEEK_END");
	CHECK(lseek(fd, 6, SEEK_SET) == 6, "lseek SEEK_SET");
	char small[8] = {0};
	CHECK(read(fd, small, 5) == 5, "read after lseek");
	printf("bytes 6..11: %.5s\n", small);
	errno = 0;
	off_t r = lseek(fd, -1, SEEK_SET);
	printf("lseek negative: ret=%lld errno=%s\n", (long long)r, errname(errno));

	char pb[8] = {0};
	CHECK(pread(fd, pb, 4, 2) == 4, "pread");
	printf("pread at 2: %.4s\n", pb);
	CHECK(lseek(fd, 0, SEEK_CUR) == 11, "pread leaves offset alone");

	char v1[3] = {0}, v2[4] = {0};
	struct iovec iov[2] = {{v1, 3}, {v2, 4}};
	lseek(fd, 0, SEEK_SET);
	CHECK(readv(fd, iov, 2) == 7, "readv");
	printf("readv: [%.3s][%.4s]\n", v1, v2);

	errno = 0;
	long rr = syscall(SYS_read, fd, (void *)1, 10);
	printf("read into bad pointer: ret=%ld errno=%s\n", rr, errname(errno));

	CHECK(close(fd) == 0, "close");
	errno = 0;
	r = close(fd);
	printf("close again: ret=%lld errno=%s\n", (long long)r, errname(errno));
	errno = 0;
	n = read(fd, buf, 1);
	printf("read closed fd: ret=%zd errno=%s\n", n, errname(errno));

	errno = 0;
	int m = open("/nonexistent-rvisor-test/missing", O_RDONLY);
	printf("open missing: ret=%d errno=%s\n", m, errname(errno));
	errno = 0;
	m = open(argv[1], O_RDONLY | O_DIRECTORY);
	printf("open file with O_DIRECTORY: ret=%d errno=%s\n", m, errname(errno));

	char cwd[4096];
	CHECK(getcwd(cwd, sizeof cwd) != NULL, "getcwd");
	const char *want = getenv("RVTEST_CWD");
	printf("getcwd absolute: %s\n", cwd[0] == '/' ? "yes" : "no");
	if (want)
		printf("getcwd == RVTEST_CWD: %s\n", strcmp(cwd, want) == 0 ? "yes" : "no");
	errno = 0;
	char *tiny = getcwd(cwd, 1);
	printf("getcwd size 1: %s errno=%s\n", tiny ? "ok" : "NULL", errname(errno));

	struct utsname u;
	CHECK(uname(&u) == 0, "uname");
	printf("sysname=%s\n", u.sysname);
	printf("release starts with digit: %s\n", u.release[0] >= '0' && u.release[0] <= '9' ? "yes" : "no");
	printf("machine=%s\n", u.machine);

	printf("files %s\n", failures ? "FAILED" : "ok");
	return failures ? 1 : 0;
}
