/* Checks opening files again through /proc/self/fd (Linux's magic links, also behind /dev/stdout
 * and /dev/fd/N): a pipe's read end opened for writing and its write end for reading, EOF once the
 * original ends close, a renamed and an unlinked file, a path through a directory fd, O_NOFOLLOW
 * and lstat on the link, the caller's stdout, and ENXIO for a socket. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static int failures;

static const char *errname(int e)
{
	switch (e) {
	case 0: return "0";
	case ENOENT: return "ENOENT";
	case ENXIO: return "ENXIO";
	case ELOOP: return "ELOOP";
	case EBADF: return "EBADF";
	case EACCES: return "EACCES";
	case ENOTDIR: return "ENOTDIR";
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

static int reopen(int fd, int flags)
{
	char p[64];
	snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
	return open(p, flags);
}

int main(void)
{
	char buf[64];
	int p[2];

	/* A pipe: the read end opened for writing is a new writer. */
	CHECK(pipe(p) == 0, "pipe");
	int w2 = reopen(p[0], O_WRONLY);
	CHECK(w2 >= 0, "open the read end's link O_WRONLY");
	/* Reads only after a write went through, so a failed open cannot hang the test. */
	CHECK(write(w2, "hello", 5) == 5 && read(p[0], buf, sizeof buf) == 5 && memcmp(buf, "hello", 5) == 0,
	      "write through it, read from the original end");
	int r2 = reopen(p[1], O_RDONLY);
	CHECK(r2 >= 0, "open the write end's link O_RDONLY");
	CHECK(write(p[1], "world", 5) == 5 && r2 >= 0 && read(r2, buf, sizeof buf) == 5 && memcmp(buf, "world", 5) == 0,
	      "write the original end, read through the new reader");
	struct stat a, b;
	CHECK(fstat(p[0], &a) == 0 && fstat(w2, &b) == 0 && a.st_ino == b.st_ino && S_ISFIFO(b.st_mode), "same pipe inode");
	close(p[1]);
	close(w2);
	CHECK(w2 >= 0 && read(p[0], buf, sizeof buf) == 0, "EOF once both writers closed");
	CHECK(r2 >= 0 && read(r2, buf, sizeof buf) == 0, "EOF for the reopened reader too");
	close(p[0]);
	close(r2);

	/* A file renamed and unlinked while open: the link leads to the file, not its old name. */
	char dir[] = "/tmp/procfdXXXXXX";
	CHECK(mkdtemp(dir) != NULL, "mkdtemp");
	char f1[128], f2[128];
	snprintf(f1, sizeof f1, "%s/one", dir);
	snprintf(f2, sizeof f2, "%s/two", dir);
	int fd = open(f1, O_RDWR | O_CREAT | O_EXCL, 0644);
	CHECK(fd >= 0 && write(fd, "content", 7) == 7, "create a file");
	CHECK(rename(f1, f2) == 0, "rename it");
	int fd2 = reopen(fd, O_RDONLY);
	CHECK(fd2 >= 0 && read(fd2, buf, sizeof buf) == 7 && memcmp(buf, "content", 7) == 0, "renamed file opens through the link");
	close(fd2);
	CHECK(unlink(f2) == 0, "unlink it");
	fd2 = reopen(fd, O_RDWR);
	CHECK(fd2 >= 0 && read(fd2, buf, sizeof buf) == 7, "unlinked file opens through the link");
	CHECK(fstat(fd, &a) == 0 && fstat(fd2, &b) == 0 && a.st_ino == b.st_ino && b.st_nlink == 0, "same inode, no links");
	CHECK(pwrite(fd2, "C", 1, 0) == 1 && pread(fd, buf, 1, 0) == 1 && buf[0] == 'C', "one file: writes show through the other fd");
	CHECK(lseek(fd, 0, SEEK_CUR) == 7 && lseek(fd2, 0, SEEK_CUR) == 7, "own file positions");
	close(fd2);
	close(fd);

	/* A directory fd's link as the start of a longer path. */
	int d = open(dir, O_RDONLY | O_DIRECTORY);
	fd = openat(d, "three", O_WRONLY | O_CREAT, 0600);
	CHECK(fd >= 0 && write(fd, "3", 1) == 1, "create a file in the directory");
	close(fd);
	snprintf(f1, sizeof f1, "/proc/self/fd/%d/three", d);
	fd = open(f1, O_RDONLY);
	CHECK(fd >= 0 && read(fd, buf, sizeof buf) == 1 && buf[0] == '3', "open /proc/self/fd/DIR/three");
	close(fd);
	snprintf(f1, sizeof f1, "/proc/self/fd/%d/../%s", d, strrchr(dir, '/') + 1);
	CHECK(stat(f1, &a) == 0 && S_ISDIR(a.st_mode), "'..' after a directory's link");
	snprintf(f1, sizeof f1, "/proc/self/fd/%d", d);
	errno = 0;
	CHECK(open(f1, O_RDONLY | O_NOFOLLOW) < 0 && errno == ELOOP, "O_NOFOLLOW on the link: ELOOP");
	CHECK(lstat(f1, &a) == 0 && S_ISLNK(a.st_mode), "lstat: a symlink");
	CHECK(stat(f1, &a) == 0 && S_ISDIR(a.st_mode), "stat: the directory");
	snprintf(f1, sizeof f1, "%s/three", dir);
	unlink(f1);
	close(d);
	CHECK(rmdir(dir) == 0, "rmdir");

	/* The caller's stdout, opened again (what `echo > /dev/stdout` does). */
	fflush(stdout);
	fd = open("/dev/stdout", O_WRONLY); /* a pipe in the ledger: no offset to differ */
	CHECK(fd >= 0, "open /dev/stdout");
	fflush(stdout);
	CHECK(write(fd, "through /dev/stdout\n", 20) == 20, "write to it");
	close(fd);
	fd = open("/dev/fd/1", O_WRONLY | O_APPEND);
	fflush(stdout);
	CHECK(fd >= 0 && write(fd, "through /dev/fd/1\n", 18) == 18, "open /dev/fd/1 and write");
	close(fd);

	/* A socket cannot be opened again. */
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	errno = 0;
	CHECK(reopen(s, O_RDWR) < 0 && errno == ENXIO, "socket: ENXIO");
	close(s);
	errno = 0;
	CHECK(reopen(999, O_RDONLY) < 0 && errno == ENOENT, "closed fd: ENOENT");

	printf("%s\n", failures ? "FAILED" : "all ok");
	return failures != 0;
}
