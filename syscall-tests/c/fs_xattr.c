/* Checks extended attributes on tmpfs (/dev/shm): set/get/list/remove through paths, symlinks and fds, XATTR_CREATE/XATTR_REPLACE, size queries, ERANGE for small buffers and long names, E2BIG, ENODATA, unknown namespaces, user.* on symlinks, and that an xattr change is an inotify IN_ATTRIB. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/xattr.h>
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
	case ENODATA: return "ENODATA";
	case ERANGE: return "ERANGE";
	case E2BIG: return "E2BIG";
	case EPERM: return "EPERM";
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

/* Expects failure with errno `e`. */
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

/* Prints a listxattr result sorted, so order does not matter. */
static void print_list(const char *what, char *buf, ssize_t n)
{
	const char *names[32];
	int k = 0;
	for (char *p = buf; p < buf + n && k < 32; p += strlen(p) + 1)
		names[k++] = p;
	for (int i = 0; i < k; i++)
		for (int j = i + 1; j < k; j++)
			if (strcmp(names[i], names[j]) > 0) {
				const char *t = names[i];
				names[i] = names[j];
				names[j] = t;
			}
	printf("%s:", what);
	for (int i = 0; i < k; i++)
		printf(" %s", names[i]);
	printf("\n");
}

int main(void)
{
	char dir[] = "/dev/shm/rvisor-xattr-XXXXXX";
	char file[256], link[256];
	char buf[512];
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(file, sizeof file, "%s/f", dir);
	snprintf(link, sizeof link, "%s/l", dir);
	int fd = open(file, O_RDWR | O_CREAT, 0644);
	symlink("f", link);

	FAILS(getxattr(file, "user.none", buf, sizeof buf), ENODATA, "get missing ENODATA");
	CHECK(listxattr(file, buf, sizeof buf) == 0, "empty list");
	CHECK(setxattr(file, "user.a", "hello", 5, 0) == 0, "set user.a");
	CHECK(getxattr(file, "user.a", NULL, 0) == 5, "size query");
	memset(buf, 0, sizeof buf);
	CHECK(getxattr(file, "user.a", buf, sizeof buf) == 5 && memcmp(buf, "hello", 5) == 0, "get user.a");
	FAILS(getxattr(file, "user.a", buf, 3), ERANGE, "small buffer ERANGE");
	FAILS(setxattr(file, "user.a", "x", 1, XATTR_CREATE), EEXIST, "XATTR_CREATE existing EEXIST");
	FAILS(setxattr(file, "user.b", "x", 1, XATTR_REPLACE), ENODATA, "XATTR_REPLACE missing ENODATA");
	CHECK(setxattr(file, "user.a", "bye", 3, XATTR_REPLACE) == 0, "XATTR_REPLACE");
	CHECK(getxattr(file, "user.a", buf, sizeof buf) == 3 && memcmp(buf, "bye", 3) == 0, "replaced value");
	CHECK(setxattr(file, "user.empty", "", 0, XATTR_CREATE) == 0, "empty value");
	CHECK(getxattr(file, "user.empty", buf, sizeof buf) == 0, "get empty value");
	FAILS(setxattr(file, "user.a", "x", 1, 4), EINVAL, "bad flags EINVAL");

	/* Through an fd and through a symlink. */
	CHECK(fsetxattr(fd, "user.fd", "1", 1, 0) == 0, "fsetxattr");
	CHECK(fgetxattr(fd, "user.fd", buf, sizeof buf) == 1, "fgetxattr");
	CHECK(getxattr(link, "user.fd", buf, sizeof buf) == 1, "getxattr follows symlink");
	FAILS(lgetxattr(link, "user.fd", buf, sizeof buf), ENODATA, "lgetxattr on symlink ENODATA");
	FAILS(lsetxattr(link, "user.x", "1", 1, 0), EPERM, "user.* on symlink EPERM");

	ssize_t n = listxattr(file, NULL, 0);
	CHECK(n == (ssize_t)(strlen("user.a") + strlen("user.empty") + strlen("user.fd") + 3), "list size query");
	FAILS(listxattr(file, buf, 4), ERANGE, "list small buffer ERANGE");
	n = flistxattr(fd, buf, sizeof buf);
	print_list("flistxattr", buf, n);
	CHECK(llistxattr(link, buf, sizeof buf) == 0, "llistxattr symlink empty");

	/* Names and sizes. */
	char longname[300];
	memset(longname, 'n', sizeof longname);
	memcpy(longname, "user.", 5);
	longname[256] = 0;
	FAILS(setxattr(file, longname, "x", 1, 0), ERANGE, "long name ERANGE");
	FAILS(getxattr(file, longname, buf, sizeof buf), ERANGE, "get long name ERANGE");
	FAILS(setxattr(file, "", "x", 1, 0), ERANGE, "empty name ERANGE");
	FAILS(setxattr(file, "bogus.x", "x", 1, 0), EOPNOTSUPP, "unknown namespace EOPNOTSUPP");
	FAILS(getxattr(file, "bogus.x", buf, sizeof buf), EOPNOTSUPP, "get unknown namespace EOPNOTSUPP");
	FAILS(setxattr(file, "user.", "x", 1, 0), EINVAL, "bare prefix EINVAL");
	char *big = calloc(1, 70000);
	FAILS(setxattr(file, "user.big", big, 65537, 0), E2BIG, "oversized value E2BIG");
	CHECK(setxattr(file, "user.big", big, 4000, 0) == 0, "4000-byte value");
	CHECK(getxattr(file, "user.big", big, 70000) == 4000, "get 4000-byte value");
	free(big);
	FAILS(getxattr(file, "system.posix_acl_access", buf, sizeof buf), ENODATA, "no ACL ENODATA");
	FAILS(getxattr("/dev/shm/rvisor-xattr-missing", "user.a", buf, sizeof buf), ENOENT, "missing file ENOENT");

	/* Directories and removal. */
	CHECK(setxattr(dir, "user.d", "dir", 3, 0) == 0, "set on directory");
	CHECK(getxattr(dir, "user.d", buf, sizeof buf) == 3, "get on directory");
	int in = inotify_init1(IN_NONBLOCK);
	inotify_add_watch(in, file, IN_ATTRIB);
	CHECK(removexattr(file, "user.a") == 0, "removexattr");
	FAILS(removexattr(file, "user.a"), ENODATA, "remove again ENODATA");
	FAILS(getxattr(file, "user.a", buf, sizeof buf), ENODATA, "removed gone");
	CHECK(fremovexattr(fd, "user.fd") == 0, "fremovexattr");
	char ev[256] __attribute__((aligned(8)));
	n = read(in, ev, sizeof ev);
	CHECK(n == 16 && ((struct inotify_event *)ev)->mask == IN_ATTRIB, "xattr change is IN_ATTRIB");
	n = listxattr(file, buf, sizeof buf);
	print_list("after removal", buf, n);
	int pfd = open(file, O_PATH);
	FAILS(fgetxattr(pfd, "user.big", buf, sizeof buf), EBADF, "O_PATH fd EBADF");
	FAILS(fgetxattr(-1, "user.big", buf, sizeof buf), EBADF, "bad fd EBADF");
	int pp[2];
	pipe(pp);
	FAILS(fsetxattr(pp[0], "user.x", "1", 1, 0), EPERM, "user.* on a pipe EPERM");
	FAILS(fgetxattr(pp[0], "user.x", buf, sizeof buf), ENODATA, "user.* get on a pipe ENODATA");

	close(pp[0]);
	close(pp[1]);
	close(pfd);
	close(in);
	close(fd);
	unlink(link);
	unlink(file);
	rmdir(dir);
	printf("failures: %d\n", failures);
	return failures != 0;
}
