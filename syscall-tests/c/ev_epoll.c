/* Checks epoll: ctl errors, level/edge-triggered, EPOLLONESHOT, EPOLLEXCLUSIVE rules, data, close removal, (fd, file) keys, nesting and ELOOP, timeouts, wake-ups, EINTR and epoll_pwait/pwait2 masks. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_epoll_pwait2
#define SYS_epoll_pwait2 441
#endif

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
	case EEXIST: return "EEXIST";
	case ENOENT: return "ENOENT";
	case ELOOP: return "ELOOP";
	case EPERM: return "EPERM";
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

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int add(int ep, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = { .events = events, .data.u64 = data };
	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

static int mod(int ep, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = { .events = events, .data.u64 = data };
	return epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
}

static volatile sig_atomic_t got_usr1, got_usr2;
static void on_usr1(int s) { (void)s; got_usr1++; }
static void on_usr2(int s) { (void)s; got_usr2++; }

/* A thread blocked in epoll_wait on an empty set. */
static int waiter_ep;
static void *waiter(void *arg)
{
	(void)arg;
	struct epoll_event ev;
	int n = epoll_wait(waiter_ep, &ev, 1, 5000);
	return (void *)(long)(n == 1 && ev.data.u64 == 55 ? 1 : 0);
}

int main(int argc, char **argv)
{
	(void)argc;
	struct epoll_event evs[8];
	int p[2];
	char c;

	CHECK(sizeof(struct epoll_event) == 12, "struct epoll_event is 12 bytes");

	/* Creation. */
	errno = 0;
	CHECK(epoll_create(0) == -1 && errno == EINVAL, "epoll_create(0) is EINVAL");
	int ep = epoll_create(1);
	CHECK(ep >= 0 && fcntl(ep, F_GETFD) == 0, "epoll_create(1)");
	close(ep);
	errno = 0;
	CHECK(epoll_create1(1) == -1 && errno == EINVAL, "epoll_create1(1) is EINVAL");
	ep = epoll_create1(EPOLL_CLOEXEC);
	CHECK(ep >= 0 && fcntl(ep, F_GETFD) == FD_CLOEXEC, "epoll_create1(EPOLL_CLOEXEC)");

	/* epoll_ctl errors. */
	CHECK(pipe(p) == 0, "pipe");
	errno = 0;
	CHECK(add(ep, ep, EPOLLIN, 0) == -1 && errno == EINVAL, "adding itself is EINVAL");
	errno = 0;
	CHECK(add(p[0], p[1], EPOLLIN, 0) == -1 && errno == EINVAL, "non-epoll epfd is EINVAL");
	errno = 0;
	CHECK(add(ep, 999, EPOLLIN, 0) == -1 && errno == EBADF, "bad fd is EBADF");
	errno = 0;
	CHECK(add(999, p[0], EPOLLIN, 0) == -1 && errno == EBADF, "bad epfd is EBADF");
	int reg = open(argv[0], O_RDONLY);
	errno = 0;
	CHECK(reg >= 0 && add(ep, reg, EPOLLIN, 0) == -1 && errno == EPERM, "regular file is EPERM");
	close(reg);
	CHECK(add(ep, p[0], EPOLLIN, 0x1122334455667788ULL) == 0, "add pipe read end");
	errno = 0;
	CHECK(add(ep, p[0], EPOLLIN, 0) == -1 && errno == EEXIST, "second add is EEXIST");
	errno = 0;
	CHECK(mod(ep, p[1], EPOLLOUT, 0) == -1 && errno == ENOENT, "mod of unregistered is ENOENT");
	errno = 0;
	CHECK(epoll_ctl(ep, EPOLL_CTL_DEL, p[1], NULL) == -1 && errno == ENOENT, "del of unregistered is ENOENT");
	errno = 0;
	CHECK(epoll_ctl(ep, 99, p[0], &evs[0]) == -1 && errno == EINVAL, "bad op is EINVAL");
	errno = 0;
	CHECK(epoll_ctl(ep, EPOLL_CTL_MOD, p[0], (struct epoll_event *)8) == -1 && errno == EFAULT, "bad event pointer is EFAULT");
	errno = 0;
	CHECK(epoll_wait(ep, evs, 0, 0) == -1 && errno == EINVAL, "maxevents 0 is EINVAL");
	errno = 0;
	CHECK(epoll_wait(p[0], evs, 1, 0) == -1 && errno == EINVAL, "epoll_wait on a pipe is EINVAL");

	/* Level-triggered. */
	CHECK(epoll_wait(ep, evs, 8, 0) == 0, "nothing ready");
	long t0 = now_ms();
	CHECK(epoll_wait(ep, evs, 8, 60) == 0 && now_ms() - t0 >= 50, "60 ms timeout passes");
	CHECK(write(p[1], "ab", 2) == 2, "write 2 bytes");
	memset(evs, 0, sizeof evs);
	CHECK(epoll_wait(ep, evs, 8, 0) == 1 && evs[0].events == EPOLLIN && evs[0].data.u64 == 0x1122334455667788ULL, "LT: EPOLLIN with our data");
	CHECK(epoll_wait(ep, evs, 8, 0) == 1, "LT: reported again");
	CHECK(read(p[0], &c, 1) == 1, "read 1 byte");
	CHECK(epoll_wait(ep, evs, 8, 0) == 1, "LT: still readable");
	CHECK(read(p[0], &c, 1) == 1, "read the last byte");
	CHECK(epoll_wait(ep, evs, 8, 0) == 0, "LT: drained");

	/* Edge-triggered. */
	CHECK(mod(ep, p[0], EPOLLIN | EPOLLET, 42) == 0, "mod to EPOLLET");
	CHECK(write(p[1], "x", 1) == 1, "write");
	CHECK(epoll_wait(ep, evs, 8, 0) == 1 && evs[0].data.u64 == 42, "ET: one edge");
	CHECK(epoll_wait(ep, evs, 8, 0) == 0, "ET: not again");
	CHECK(write(p[1], "y", 1) == 1, "write more");
	CHECK(epoll_wait(ep, evs, 8, 0) == 1, "ET: new data is a new edge");
	CHECK(epoll_wait(ep, evs, 8, 0) == 0, "ET: quiet again");
	char buf[16];
	CHECK(read(p[0], buf, sizeof buf) == 2, "drain");
	CHECK(write(p[1], "z", 1) == 1, "write after drain");
	CHECK(epoll_wait(ep, evs, 8, 0) == 1, "ET: edge after drain");
	CHECK(read(p[0], buf, sizeof buf) == 1, "drain again");

	/* One-shot. */
	CHECK(mod(ep, p[0], EPOLLIN | EPOLLONESHOT, 7) == 0, "mod to EPOLLONESHOT");
	CHECK(write(p[1], "x", 1) == 1, "write");
	CHECK(epoll_wait(ep, evs, 8, 0) == 1 && evs[0].data.u64 == 7, "oneshot: reported once");
	CHECK(epoll_wait(ep, evs, 8, 0) == 0, "oneshot: disabled");
	CHECK(write(p[1], "x", 1) == 1, "write more");
	CHECK(epoll_wait(ep, evs, 8, 0) == 0, "oneshot: still disabled");
	CHECK(mod(ep, p[0], EPOLLIN | EPOLLONESHOT, 8) == 0, "re-arm with mod");
	CHECK(epoll_wait(ep, evs, 8, 0) == 1 && evs[0].data.u64 == 8, "oneshot: reported after mod");
	CHECK(read(p[0], buf, sizeof buf) == 2, "drain");
	CHECK(epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL) == 0, "del");
	CHECK(write(p[1], "x", 1) == 1, "write");
	CHECK(epoll_wait(ep, evs, 8, 0) == 0, "deleted: not reported");
	CHECK(read(p[0], buf, sizeof buf) == 1, "drain");

	/* EPOLLOUT, EPOLLRDHUP, EPOLLHUP and EPOLLERR on pipes. */
	CHECK(add(ep, p[1], EPOLLOUT, 2) == 0, "add write end for EPOLLOUT");
	CHECK(epoll_wait(ep, evs, 8, 0) == 1 && evs[0].events == EPOLLOUT && evs[0].data.u64 == 2, "EPOLLOUT");
	CHECK(epoll_ctl(ep, EPOLL_CTL_DEL, p[1], NULL) == 0, "del write end");
	CHECK(add(ep, p[0], EPOLLIN | EPOLLRDHUP, 1) == 0, "add read end with EPOLLRDHUP");
	CHECK(write(p[1], "x", 1) == 1, "write");
	CHECK(epoll_wait(ep, evs, 8, 0) == 1 && evs[0].events == EPOLLIN, "pipe data: EPOLLIN only");
	close(p[1]);
	CHECK(epoll_wait(ep, evs, 8, 0) == 1 && evs[0].events == (EPOLLIN | EPOLLHUP), "writer gone: EPOLLIN|EPOLLHUP");
	CHECK(read(p[0], buf, sizeof buf) == 1, "drain");
	CHECK(epoll_wait(ep, evs, 8, 0) == 1 && evs[0].events == EPOLLHUP, "then EPOLLHUP alone");
	close(p[0]);
	CHECK(epoll_wait(ep, evs, 8, 0) == 0, "closing the last fd removes the interest");
	CHECK(pipe(p) == 0, "new pipe");
	CHECK(add(ep, p[1], EPOLLOUT, 3) == 0, "add new write end");
	close(p[0]);
	CHECK(epoll_wait(ep, evs, 8, 0) == 1 && (evs[0].events & EPOLLERR) && evs[0].data.u64 == 3, "reader gone: EPOLLERR");
	close(p[1]);

	/* Interests are keyed by (fd, file): dups are separate; closing one fd keeps the file's. */
	CHECK(pipe(p) == 0, "pipe for dup checks");
	int d = dup(p[0]);
	CHECK(add(ep, p[0], EPOLLIN, 10) == 0 && add(ep, d, EPOLLIN, 11) == 0, "add fd and its dup");
	CHECK(write(p[1], "x", 1) == 1, "write");
	int n = epoll_wait(ep, evs, 8, 0);
	CHECK(n == 2 && evs[0].data.u64 + evs[1].data.u64 == 21, "both reported");
	close(p[0]);
	n = epoll_wait(ep, evs, 8, 0);
	CHECK(n == 2, "closed fd's interest stays while the file is open");
	errno = 0;
	CHECK(epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL) == -1 && errno == EBADF, "del of a closed fd is EBADF");
	close(d);
	CHECK(epoll_wait(ep, evs, 8, 0) == 0, "last fd closed: both gone");
	close(p[1]);

	/* maxevents smaller than the ready set: every interest gets its turn. */
	int ps[3][2];
	for (int i = 0; i < 3; i++) {
		if (pipe(ps[i]) != 0 || add(ep, ps[i][0], EPOLLIN, 100 + i) != 0 || write(ps[i][1], "x", 1) != 1)
			printf("setup %d failed\n", i);
	}
	CHECK(epoll_wait(ep, evs, 8, 0) == 3, "three ready");
	int seen = 0;
	for (int i = 0; i < 3; i++) {
		if (epoll_wait(ep, evs, 1, 0) == 1 && evs[0].data.u64 >= 100 && evs[0].data.u64 < 103)
			seen |= 1 << (evs[0].data.u64 - 100);
	}
	CHECK(seen == 7, "three maxevents=1 waits report all three");
	for (int i = 0; i < 3; i++) {
		close(ps[i][0]);
		close(ps[i][1]);
	}

	/* EPOLLEXCLUSIVE. */
	CHECK(pipe(p) == 0, "pipe for EPOLLEXCLUSIVE");
	CHECK(add(ep, p[0], EPOLLIN | EPOLLEXCLUSIVE, 5) == 0, "add with EPOLLEXCLUSIVE");
	errno = 0;
	CHECK(mod(ep, p[0], EPOLLIN, 5) == -1 && errno == EINVAL, "mod of an exclusive interest is EINVAL");
	errno = 0;
	CHECK(mod(ep, p[0], EPOLLIN | EPOLLEXCLUSIVE, 5) == -1 && errno == EINVAL, "mod with EPOLLEXCLUSIVE is EINVAL");
	errno = 0;
	CHECK(add(ep, p[1], EPOLLOUT | EPOLLEXCLUSIVE | EPOLLONESHOT, 5) == -1 && errno == EINVAL, "EPOLLEXCLUSIVE|EPOLLONESHOT is EINVAL");
	CHECK(write(p[1], "x", 1) == 1, "write");
	CHECK(epoll_wait(ep, evs, 8, 0) == 1 && evs[0].data.u64 == 5, "exclusive interest reports");
	CHECK(epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL) == 0, "del exclusive");

	/* Nesting. */
	int inner = epoll_create1(0);
	CHECK(add(inner, p[0], EPOLLIN, 1) == 0, "inner watches the pipe");
	CHECK(add(ep, inner, EPOLLIN, 99) == 0, "outer watches inner");
	CHECK(epoll_wait(ep, evs, 8, 0) == 1 && evs[0].data.u64 == 99 && evs[0].events == EPOLLIN, "outer: inner is readable");
	struct pollfd pf = { .fd = inner, .events = POLLIN };
	CHECK(poll(&pf, 1, 0) == 1 && pf.revents == POLLIN, "poll on an epoll fd");
	errno = 0;
	CHECK(add(inner, ep, EPOLLIN, 0) == -1 && errno == ELOOP, "a loop is ELOOP");
	errno = 0;
	CHECK(add(ep, inner, EPOLLIN | EPOLLEXCLUSIVE, 0) == -1 && errno == EINVAL, "EPOLLEXCLUSIVE on an epoll fd is EINVAL");
	CHECK(read(p[0], buf, sizeof buf) == 1, "drain");
	CHECK(epoll_wait(ep, evs, 8, 0) == 0, "outer: inner is empty");
	pf.revents = 0;
	CHECK(poll(&pf, 1, 0) == 0, "poll: epoll fd not ready");
	CHECK(epoll_ctl(ep, EPOLL_CTL_DEL, inner, NULL) == 0, "del inner");
	close(inner);

	/* Blocking wait woken by another process. */
	CHECK(add(ep, p[0], EPOLLIN, 77) == 0, "add pipe");
	pid_t pid = xfork();
	if (pid == 0) {
		usleep(50000);
		_exit(write(p[1], "w", 1) == 1 ? 0 : 1);
	}
	CHECK(epoll_wait(ep, evs, 8, -1) == 1 && evs[0].data.u64 == 77, "blocking wait woken by a write");
	CHECK(reaped_ok(pid), "writer exit 0");
	CHECK(read(p[0], buf, sizeof buf) == 1, "drain");

	/* Another thread adding a ready file wakes a waiter. */
	waiter_ep = epoll_create1(0);
	int efd = eventfd(1, 0);
	pthread_t th;
	void *res = NULL;
	CHECK(pthread_create(&th, NULL, waiter, NULL) == 0, "start a waiting thread");
	usleep(50000);
	CHECK(add(waiter_ep, efd, EPOLLIN, 55) == 0, "add a ready eventfd");
	CHECK(pthread_join(th, &res) == 0 && res == (void *)1, "the waiting thread got it");
	close(efd);
	close(waiter_ep);

	/* Signals: EINTR even with SA_RESTART; epoll_pwait's temporary mask. */
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr2;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR2, &sa, NULL);
	sa.sa_handler = on_usr1;
	sa.sa_flags = 0;
	sigaction(SIGUSR1, &sa, NULL);
	pid_t me = getpid();
	pid = xfork();
	if (pid == 0) {
		usleep(50000);
		kill(me, SIGUSR2);
		_exit(0);
	}
	errno = 0;
	CHECK(epoll_wait(ep, evs, 8, 5000) == -1 && errno == EINTR && got_usr2 == 1, "epoll_wait: EINTR despite SA_RESTART");
	CHECK(reaped_ok(pid), "signaller exit 0");

	sigset_t block, empty, cur;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigemptyset(&empty);
	sigprocmask(SIG_BLOCK, &block, NULL);
	pid = xfork();
	if (pid == 0) {
		usleep(50000);
		kill(me, SIGUSR1);
		_exit(0);
	}
	errno = 0;
	CHECK(epoll_pwait(ep, evs, 8, 5000, &empty) == -1 && errno == EINTR && got_usr1 == 1, "epoll_pwait: unblocked signal interrupts");
	CHECK(reaped_ok(pid), "signaller exit 0");
	sigprocmask(SIG_BLOCK, NULL, &cur);
	CHECK(sigismember(&cur, SIGUSR1), "mask restored after epoll_pwait");
	kill(me, SIGUSR1);
	CHECK(epoll_pwait(ep, evs, 8, 20, &block) == 0 && got_usr1 == 1, "epoll_pwait: blocked signal does not interrupt");
	sigprocmask(SIG_UNBLOCK, &block, NULL);
	CHECK(got_usr1 == 2, "pending signal delivered after unblocking");

	/* epoll_pwait2 with a timespec. */
	struct timespec ts = { 0, 30000000 };
	t0 = now_ms();
	CHECK(syscall(SYS_epoll_pwait2, ep, evs, 8, &ts, NULL, 8) == 0 && now_ms() - t0 >= 25, "epoll_pwait2 30 ms timeout");
	ts.tv_nsec = 1000000000;
	errno = 0;
	CHECK(syscall(SYS_epoll_pwait2, ep, evs, 8, &ts, NULL, 8) == -1 && errno == EINVAL, "epoll_pwait2 bad timespec is EINVAL");
	CHECK(write(p[1], "x", 1) == 1, "write");
	CHECK(syscall(SYS_epoll_pwait2, ep, evs, 8, NULL, NULL, 8) == 1 && evs[0].data.u64 == 77, "epoll_pwait2 NULL timeout reports");
	errno = 0;
	CHECK(epoll_pwait(ep, evs, 8, 0, &empty) == 1, "epoll_pwait reports");
	errno = 0;
	CHECK(syscall(SYS_epoll_pwait, ep, evs, 8, 0, &empty, 4) == -1 && errno == EINVAL, "epoll_pwait bad sigsetsize is EINVAL");

	close(p[0]);
	close(p[1]);
	close(ep);

	if (failures) {
		printf("%d failures\n", failures);
		return 1;
	}
	printf("all ok\n");
	return 0;
}
