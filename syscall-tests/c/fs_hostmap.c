/* A read-only file of the host's tree (this program's own executable, argv[0]): the offset of its
 * open file (lseek in every form, shared by dup and fork, untouched by pread), terminal ioctls, and
 * private mappings of it (contents equal the file's, a write is private to its mapping and
 * process, MADV_DONTNEED reads the file again, the tail of the last page is zero). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static int failures;

static void check(const char *what, int ok)
{
	printf("%s: %s\n", what, ok ? "ok" : "FAIL");
	failures += !ok;
}

static long seek(int fd, off_t off, int whence)
{
	off_t r = lseek(fd, off, whence);
	return r < 0 ? -errno : (long)r;
}

int main(int argc, char **argv)
{
	(void)argc;
	int fd = open(argv[0], O_RDONLY);
	if (fd < 0) {
		printf("open: %s\n", strerror(errno));
		return 1;
	}
	struct stat st;
	fstat(fd, &st);
	long size = (long)st.st_size;
	char *data = malloc(size);
	check("pread of the whole file", pread(fd, data, size, 0) == size);

	char buf[64];
	check("starts at 0", seek(fd, 0, SEEK_CUR) == 0);
	check("read moves the offset", read(fd, buf, 16) == 16 && seek(fd, 0, SEEK_CUR) == 16);
	check("read returns the file's bytes", memcmp(buf, data, 16) == 0);
	check("SEEK_CUR back", seek(fd, -4, SEEK_CUR) == 12);
	check("read after SEEK_CUR", read(fd, buf, 4) == 4 && memcmp(buf, data + 12, 4) == 0);
	check("pread leaves the offset", pread(fd, buf, 8, 100) == 8 && seek(fd, 0, SEEK_CUR) == 16);
	check("SEEK_END", seek(fd, 0, SEEK_END) == size);
	check("past the end", seek(fd, 10, SEEK_END) == size + 10 && read(fd, buf, 8) == 0);
	check("SEEK_SET negative: EINVAL", seek(fd, -1, SEEK_SET) == -EINVAL);
	check("SEEK_END before the start: EINVAL", seek(fd, -(size + 1), SEEK_END) == -EINVAL);
	check("bad whence: EINVAL", seek(fd, 0, 7) == -EINVAL);
	check("offset kept after errors", seek(fd, 0, SEEK_CUR) == size + 10);
	check("SEEK_DATA at 0", seek(fd, 0, SEEK_DATA) == 0);
	check("SEEK_HOLE finds the end", seek(fd, 0, SEEK_HOLE) == size);
	check("SEEK_DATA at the end: ENXIO", seek(fd, size, SEEK_DATA) == -ENXIO);

	int d = dup(fd);
	seek(fd, 100, SEEK_SET);
	check("dup shares the offset", seek(d, 0, SEEK_CUR) == 100);
	pid_t pid = fork();
	if (pid == 0)
		_exit(read(fd, buf, 10) == 10 ? 0 : 1);
	int ws;
	waitpid(pid, &ws, 0);
	check("a child's read moves the parent's offset", WIFEXITED(ws) && WEXITSTATUS(ws) == 0 && seek(fd, 0, SEEK_CUR) == 110);
	close(d);

	struct termios t;
	check("TCGETS: ENOTTY", ioctl(fd, TCGETS, &t) < 0 && errno == ENOTTY);
	check("not a tty", !isatty(fd));

	long page = sysconf(_SC_PAGESIZE);
	long span = (size + page - 1) / page * page;
	unsigned char *p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	unsigned char *q = mmap(NULL, span, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED || q == MAP_FAILED) {
		printf("mmap: %s\n", strerror(errno));
		return 1;
	}
	check("a mapping holds the file", memcmp(p, data, size) == 0 && memcmp(q, data, size) == 0);
	int tail_zero = 1;
	for (long i = size; i < span; i++)
		tail_zero &= p[i] == 0;
	check("the last page's tail is zero", tail_zero);
	long at = size / 2;
	p[at] ^= 0xff;
	check("a write is the mapping's own", p[at] == (unsigned char)(data[at] ^ 0xff) && q[at] == (unsigned char)data[at]);
	check("a write leaves the file", pread(fd, buf, 1, at) == 1 && buf[0] == data[at]);
	pid = fork();
	if (pid == 0) {
		p[at + 1] ^= 0xff;
		_exit(p[at] == (unsigned char)(data[at] ^ 0xff) ? 0 : 1);
	}
	waitpid(pid, &ws, 0);
	check("a child sees the parent's copy, and keeps its own write", WIFEXITED(ws) && WEXITSTATUS(ws) == 0 &&
		p[at + 1] == (unsigned char)data[at + 1]);
	unsigned char *pg = p + at / page * page;
	check("MADV_DONTNEED", madvise(pg, page, MADV_DONTNEED) == 0);
	check("then the file's bytes again", p[at] == (unsigned char)data[at]);
	check("read-only, then writable", mprotect(q, page, PROT_READ | PROT_WRITE) == 0);
	q[0] ^= 0xff;
	check("the write stays private", q[0] == (unsigned char)(data[0] ^ 0xff) && p[0] == (unsigned char)data[0]);
	munmap(p, span);
	munmap(q, span);
	/* A mapping at an offset, then a mapping of the same file over part of it (as ld.so maps a
	 * library's span, then its segments). */
	if (size > 4 * page) {
		unsigned char *r = mmap(NULL, 3 * page, PROT_READ, MAP_PRIVATE, fd, page);
		check("a mapping at an offset", r != MAP_FAILED && memcmp(r, data + page, 3 * page) == 0);
		unsigned char *s = mmap(r + page, page, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 3 * page);
		check("a fixed mapping over it", s == r + page && memcmp(s, data + 3 * page, page) == 0 &&
			memcmp(r, data + page, page) == 0 && memcmp(r + 2 * page, data + 3 * page, page) == 0);
		munmap(r, 3 * page);
	}
	close(fd);
	return failures ? 1 : 0;
}
