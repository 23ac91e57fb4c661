/* Checks O_TMPFILE in /tmp and /dev/shm: an unnamed file (nlink 0) that linkat(AT_EMPTY_PATH) or linkat(/proc/self/fd/N, AT_SYMLINK_FOLLOW) names, O_EXCL files that cannot be named, the EINVAL/ENOTDIR/ENOENT/EEXIST cases, and the /proc/self/fd link text. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int failures;

static const char *errname(int e)
{
	switch (e) {
	case 0: return "0";
	case EBADF: return "EBADF";
	case EINVAL: return "EINVAL";
	case ENOENT: return "ENOENT";
	case EEXIST: return "EEXIST";
	case ENOTDIR: return "ENOTDIR";
	case EISDIR: return "EISDIR";
	case EOPNOTSUPP: return "EOPNOTSUPP";
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

#define FAILS(expr, e, what)                                                 \
	do {                                                                 \
		errno = 0;                                                   \
		long r_ = (long)(expr);                                      \
		if (r_ < 0 && errno == (e))                                  \
			printf("%s: ok\n", what);                            \
		else {                                                       \
			printf("%s: FAIL (ret %ld errno %s)\n", what, r_, errname(errno)); \
			failures++;                                          \
		}                                                            \
	} while (0)

static void run(const char *base)
{
	char dir[256], name[300], name2[300], file[300], fdpath[64], link[512];
	struct stat st;
	char buf[16] = {0};
	printf("== %s\n", strncmp(base, "/tmp", 4) == 0 ? "tmp" : "shm");
	snprintf(dir, sizeof dir, "%s/rvisor-tmpfile-XXXXXX", base);
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		exit(1);
	}
	snprintf(name, sizeof name, "%s/named", dir);
	snprintf(name2, sizeof name2, "%s/named2", dir);
	snprintf(file, sizeof file, "%s/plain", dir);
	close(open(file, O_WRONLY | O_CREAT, 0600));

	umask(022);
	int fd = open(dir, O_TMPFILE | O_RDWR, 0666);
	CHECK(fd >= 0, "O_TMPFILE open");
	CHECK(fstat(fd, &st) == 0 && st.st_nlink == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0644, "unnamed, regular, umask applied");
	CHECK(write(fd, "data", 4) == 4, "write");
	snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(fdpath, link, sizeof link - 1);
	link[n > 0 ? n : 0] = 0;
	CHECK(n > 0 && strncmp(link, dir, strlen(dir)) == 0 && strncmp(link + strlen(dir), "/#", 2) == 0 && strstr(link, " (deleted)") != NULL, "fd link text");
	CHECK(linkat(fd, "", AT_FDCWD, name, AT_EMPTY_PATH) == 0, "linkat AT_EMPTY_PATH");
	CHECK(fstat(fd, &st) == 0 && st.st_nlink == 1, "nlink 1 after link");
	int rd = open(name, O_RDONLY);
	CHECK(rd >= 0 && read(rd, buf, sizeof buf) == 4 && memcmp(buf, "data", 4) == 0, "content through the name");
	close(rd);
	close(fd);

	fd = open(dir, O_TMPFILE | O_WRONLY, 0600);
	snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", fd);
	CHECK(linkat(AT_FDCWD, fdpath, AT_FDCWD, name2, AT_SYMLINK_FOLLOW) == 0, "linkat /proc/self/fd AT_SYMLINK_FOLLOW");
	CHECK(stat(name2, &st) == 0 && st.st_nlink == 1, "named through /proc");
	FAILS(linkat(fd, "", AT_FDCWD, name2, AT_EMPTY_PATH), EEXIST, "link onto existing EEXIST");
	close(fd);

	fd = open(dir, O_TMPFILE | O_RDWR | O_EXCL, 0600);
	CHECK(fd >= 0, "O_TMPFILE|O_EXCL open");
	snprintf(name, sizeof name, "%s/never", dir);
	FAILS(linkat(fd, "", AT_FDCWD, name, AT_EMPTY_PATH), ENOENT, "O_EXCL: linkat ENOENT");
	FAILS(access(name, F_OK), ENOENT, "no name made");
	close(fd);

	FAILS(open(dir, O_TMPFILE | O_RDONLY, 0600), EINVAL, "read-only EINVAL");
	FAILS(open(dir, O_TMPFILE | O_RDWR | O_CREAT, 0600), EINVAL, "with O_CREAT EINVAL");
	FAILS(open(file, O_TMPFILE | O_RDWR, 0600), ENOTDIR, "on a file ENOTDIR");
	snprintf(name, sizeof name, "%s/missing/", dir);
	FAILS(open(name, O_TMPFILE | O_RDWR, 0600), ENOENT, "missing dir ENOENT");
	FAILS(open("/proc", O_TMPFILE | O_RDWR, 0600), EOPNOTSUPP, "procfs EOPNOTSUPP");

	unlink(file);
	unlink(name2);
	snprintf(name, sizeof name, "%s/named", dir);
	unlink(name);
	CHECK(rmdir(dir) == 0, "directory empty again");
}

int main(void)
{
	run("/tmp");
	run("/dev/shm");
	printf("failures: %d\n", failures);
	return failures != 0;
}
