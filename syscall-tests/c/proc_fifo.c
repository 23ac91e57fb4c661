/* Named pipes: mkfifo, blocking opens that wait for the other side,
 * O_NONBLOCK opens (ENXIO for a writer alone), O_RDWR, EOF and EPIPE,
 * poll hang-up only after a writer came and went, fstat, unlink. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int failures;

static void on_alarm(int sig)
{
	(void)sig;
}

#define CHECK(cond, what)                                                        \
	do {                                                                     \
		if (cond)                                                        \
			printf("%s: ok\n", what);                                \
		else {                                                           \
			printf("%s: FAIL (%s)\n", what, strerror(errno));        \
			failures++;                                              \
		}                                                                \
	} while (0)

int main(void)
{
	char dir[] = "/tmp/fifoXXXXXX";
	CHECK(mkdtemp(dir) != NULL, "mkdtemp");
	char path[64];
	snprintf(path, sizeof path, "%s/f", dir);
	CHECK(mkfifo(path, 0600) == 0, "mkfifo");
	errno = 0;
	CHECK(mkfifo(path, 0600) == -1 && errno == EEXIST, "mkfifo again is EEXIST");
	struct stat st;
	CHECK(stat(path, &st) == 0 && S_ISFIFO(st.st_mode) && (st.st_mode & 0777) == 0600, "stat says fifo");

	/* A writer alone, non-blocking: ENXIO. */
	errno = 0;
	CHECK(open(path, O_WRONLY | O_NONBLOCK) == -1 && errno == ENXIO, "nonblocking writer without reader is ENXIO");

	/* A non-blocking reader opens at once; reads see EOF, poll no hang-up
	 * until a writer has come and gone. */
	int r = open(path, O_RDONLY | O_NONBLOCK);
	CHECK(r >= 0, "nonblocking reader opens");
	char buf[64];
	CHECK(read(r, buf, sizeof buf) == 0, "read without writers is EOF");
	struct pollfd p = { .fd = r, .events = POLLIN };
	{ int k = poll(&p, 1, 0); printf("poll before any writer: %d revents=%#x\n", k, p.revents); }
	int w = open(path, O_WRONLY | O_NONBLOCK);
	CHECK(w >= 0, "nonblocking writer with a reader opens");
	CHECK(write(w, "abc", 3) == 3, "write");
	p.revents = 0;
	{ int k = poll(&p, 1, 0); printf("poll with data: %d revents=%#x\n", k, p.revents); }
	CHECK(read(r, buf, sizeof buf) == 3 && memcmp(buf, "abc", 3) == 0, "read what was written");
	errno = 0;
	CHECK(read(r, buf, sizeof buf) == -1 && errno == EAGAIN, "empty with a writer is EAGAIN");
	struct stat fst;
	CHECK(fstat(w, &fst) == 0 && fst.st_ino == st.st_ino && S_ISFIFO(fst.st_mode), "fstat is the inode");
	close(w);
	p.revents = 0;
	{ int k = poll(&p, 1, 0); printf("poll after the writer left: %d revents=%#x\n", k, p.revents); }
	close(r);

	/* Blocking opens meet: the child writes, the parent reads to EOF. */
	pid_t c = fork();
	if (c == 0) {
		int fd = open(path, O_WRONLY);
		if (fd < 0)
			_exit(1);
		for (int i = 0; i < 1000; i++)
			if (write(fd, "0123456789", 10) != 10)
				_exit(2);
		_exit(0);
	}
	r = open(path, O_RDONLY);
	CHECK(r >= 0, "blocking reader meets a writer");
	long total = 0;
	ssize_t n;
	while ((n = read(r, buf, sizeof buf)) > 0)
		total += n;
	printf("read %ld bytes then EOF\n", total);
	int stc;
	CHECK(waitpid(c, &stc, 0) == c && WIFEXITED(stc) && WEXITSTATUS(stc) == 0, "writer child exit 0");
	close(r);

	/* The other order: the reader blocks first (in a child). */
	c = fork();
	if (c == 0) {
		int fd = open(path, O_RDONLY);
		char b[8] = { 0 };
		_exit(fd >= 0 && read(fd, b, sizeof b) == 2 && memcmp(b, "hi", 2) == 0 ? 0 : 1);
	}
	w = open(path, O_WRONLY);
	CHECK(w >= 0 && write(w, "hi", 2) == 2, "blocking writer meets a reader");
	CHECK(waitpid(c, &stc, 0) == c && WIFEXITED(stc) && WEXITSTATUS(stc) == 0, "reader child got it");
	/* Reader gone: EPIPE (SIGPIPE ignored). */
	signal(SIGPIPE, SIG_IGN);
	errno = 0;
	CHECK(write(w, "x", 1) == -1 && errno == EPIPE, "write without readers is EPIPE");
	close(w);

	/* O_RDWR never waits and is both ends. */
	int rw = open(path, O_RDWR);
	CHECK(rw >= 0 && write(rw, "zz", 2) == 2 && read(rw, buf, 2) == 2, "O_RDWR reads its own writes");
	close(rw);

	/* A blocked open is interrupted by a signal handler (no SA_RESTART). */
	struct sigaction h = { 0 };
	h.sa_handler = on_alarm;
	sigaction(SIGALRM, &h, NULL);
	alarm(1);
	errno = 0;
	int fd = open(path, O_RDONLY);
	CHECK(fd == -1 && errno == EINTR, "blocked open is EINTR after a signal");

	CHECK(unlink(path) == 0 && rmdir(dir) == 0, "unlink fifo");
	if (failures) {
		printf("%d failures\n", failures);
		return 1;
	}
	printf("all ok\n");
	return 0;
}
