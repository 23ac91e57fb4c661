/* Checks eventfd/eventfd2: counter and semaphore reads, EAGAIN, EINVAL for short buffers and ~0, blocking read and overflow write, poll readiness, flags. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static int failures;

static const char *errname(int e)
{
	switch (e) {
	case 0: return "0";
	case EAGAIN: return "EAGAIN";
	case EBADF: return "EBADF";
	case EINTR: return "EINTR";
	case EINVAL: return "EINVAL";
	case EFAULT: return "EFAULT";
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

static pid_t xfork(void)
{
	fflush(stdout);
	return fork();
}

static int reaped_ok(pid_t pid)
{
	int st = 0;
	return waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

int main(void)
{
	uint64_t v;

	/* Counter mode: read returns the sum and resets it. */
	int fd = eventfd(5, EFD_NONBLOCK);
	CHECK(fd >= 0, "eventfd(5, EFD_NONBLOCK)");
	v = 0;
	CHECK(read(fd, &v, 8) == 8 && v == 5, "read returns 5");
	errno = 0;
	CHECK(read(fd, &v, 8) == -1 && errno == EAGAIN, "read of 0 is EAGAIN");
	v = 2;
	CHECK(write(fd, &v, 8) == 8, "write 2");
	v = 3;
	CHECK(write(fd, &v, 8) == 8, "write 3");
	v = 0;
	CHECK(read(fd, &v, 8) == 8 && v == 5, "read returns the sum 5");

	/* Buffer sizes and the forbidden value. */
	char big[16];
	uint32_t small = 0;
	errno = 0;
	CHECK(read(fd, &small, 4) == -1 && errno == EINVAL, "4-byte read is EINVAL");
	errno = 0;
	CHECK(write(fd, &small, 4) == -1 && errno == EINVAL, "4-byte write is EINVAL");
	v = UINT64_MAX;
	errno = 0;
	CHECK(write(fd, &v, 8) == -1 && errno == EINVAL, "write of ~0 is EINVAL");
	v = 9;
	CHECK(write(fd, &v, 8) == 8, "write 9");
	memset(big, 0, sizeof big);
	CHECK(read(fd, big, sizeof big) == 8 && big[0] == 9, "16-byte read returns 8 bytes");
	v = 0;
	CHECK(write(fd, &v, 8) == 8, "write 0 is allowed");
	errno = 0;
	CHECK(read(fd, &v, 8) == -1 && errno == EAGAIN, "counter still 0");

	/* Flags. */
	CHECK(fcntl(fd, F_GETFL) == (O_RDWR | O_NONBLOCK), "F_GETFL is O_RDWR|O_NONBLOCK");
	CHECK(fcntl(fd, F_GETFD) == 0, "no FD_CLOEXEC by default");
	close(fd);
	fd = eventfd(0, EFD_CLOEXEC);
	CHECK(fd >= 0 && fcntl(fd, F_GETFD) == FD_CLOEXEC, "EFD_CLOEXEC sets FD_CLOEXEC");
	CHECK(fcntl(fd, F_GETFL) == O_RDWR, "F_GETFL is O_RDWR");
	close(fd);
	errno = 0;
	CHECK(eventfd(0, 0x10) == -1 && errno == EINVAL, "unknown flag is EINVAL");
	fd = syscall(SYS_eventfd, 4);
	v = 0;
	CHECK(fd >= 0 && read(fd, &v, 8) == 8 && v == 4, "old eventfd syscall");
	close(fd);

	/* Semaphore mode: read returns 1 and decrements. */
	fd = eventfd(3, EFD_SEMAPHORE | EFD_NONBLOCK);
	CHECK(fd >= 0, "eventfd(3, EFD_SEMAPHORE)");
	int ones = 0;
	for (int i = 0; i < 3; i++) {
		v = 0;
		if (read(fd, &v, 8) == 8 && v == 1)
			ones++;
	}
	CHECK(ones == 3, "three reads of 1");
	errno = 0;
	CHECK(read(fd, &v, 8) == -1 && errno == EAGAIN, "fourth read is EAGAIN");
	close(fd);

	/* The ceiling: 0xfffffffffffffffe. */
	fd = eventfd(0, EFD_NONBLOCK);
	v = 0xfffffffffffffffeULL;
	CHECK(write(fd, &v, 8) == 8, "write the maximum");
	v = 1;
	errno = 0;
	CHECK(write(fd, &v, 8) == -1 && errno == EAGAIN, "one more is EAGAIN");
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLOUT };
	CHECK(poll(&p, 1, 0) == 1 && p.revents == POLLIN, "full counter: POLLIN only");
	v = 0;
	CHECK(read(fd, &v, 8) == 8 && v == 0xfffffffffffffffeULL, "read the maximum");
	p.revents = 0;
	CHECK(poll(&p, 1, 0) == 1 && p.revents == POLLOUT, "empty counter: POLLOUT only");
	close(fd);

	/* Blocking read, woken by another process's write. */
	fd = eventfd(0, 0);
	pid_t pid = xfork();
	if (pid == 0) {
		usleep(50000);
		uint64_t x = 7;
		_exit(write(fd, &x, 8) == 8 ? 0 : 1);
	}
	v = 0;
	CHECK(read(fd, &v, 8) == 8 && v == 7, "blocking read gets 7");
	CHECK(reaped_ok(pid), "writer exit 0");

	/* Blocking write at the ceiling, released by a read. */
	v = 0xfffffffffffffff0ULL;
	CHECK(write(fd, &v, 8) == 8, "fill near the ceiling");
	pid = xfork();
	if (pid == 0) {
		usleep(50000);
		uint64_t x = 0;
		_exit(read(fd, &x, 8) == 8 && x == 0xfffffffffffffff0ULL ? 0 : 1);
	}
	v = 0x100;
	CHECK(write(fd, &v, 8) == 8, "blocked write completes after the read");
	CHECK(reaped_ok(pid), "reader exit 0");
	v = 0;
	CHECK(read(fd, &v, 8) == 8 && v == 0x100, "the blocked write's value");

	/* poll and select wake on a write from another process. */
	pid = xfork();
	if (pid == 0) {
		usleep(50000);
		uint64_t x = 1;
		_exit(write(fd, &x, 8) == 8 ? 0 : 1);
	}
	p.fd = fd;
	p.events = POLLIN;
	p.revents = 0;
	CHECK(poll(&p, 1, 5000) == 1 && p.revents == POLLIN, "poll woken by the write");
	CHECK(reaped_ok(pid), "poll writer exit 0");
	fd_set rs;
	FD_ZERO(&rs);
	FD_SET(fd, &rs);
	struct timeval tv = { 0, 0 };
	CHECK(select(fd + 1, &rs, NULL, NULL, &tv) == 1 && FD_ISSET(fd, &rs), "select sees it readable");
	close(fd);

	if (failures) {
		printf("%d failures\n", failures);
		return 1;
	}
	printf("all ok\n");
	return 0;
}
