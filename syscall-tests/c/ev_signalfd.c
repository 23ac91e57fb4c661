/* Checks signalfd/signalfd4: siginfo fields, queued real-time signals, mask updates, EINVAL rules, blocking read, poll/select/epoll readiness on signal arrival. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/signalfd.h>
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

/* A child that sends `sig` to the parent after 50 ms. */
static pid_t send_later(int sig)
{
	pid_t parent = getpid();
	pid_t pid = xfork();
	if (pid == 0) {
		usleep(50000);
		_exit(kill(parent, sig) == 0 ? 0 : 1);
	}
	return pid;
}

int main(void)
{
	struct signalfd_siginfo si[4];
	sigset_t usr1, usr2, both, rtmin;

	CHECK(sizeof(struct signalfd_siginfo) == 128, "signalfd_siginfo is 128 bytes");
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	sigemptyset(&both);
	sigaddset(&both, SIGUSR1);
	sigaddset(&both, SIGUSR2);
	sigaddset(&both, SIGRTMIN);
	sigemptyset(&rtmin);
	sigaddset(&rtmin, SIGRTMIN);
	sigprocmask(SIG_BLOCK, &both, NULL);

	/* Creation. */
	int fd = signalfd(-1, &usr1, SFD_NONBLOCK | SFD_CLOEXEC);
	CHECK(fd >= 0, "signalfd(-1, {USR1}, SFD_NONBLOCK|SFD_CLOEXEC)");
	CHECK(fcntl(fd, F_GETFD) == FD_CLOEXEC, "FD_CLOEXEC set");
	CHECK(fcntl(fd, F_GETFL) == (O_RDWR | O_NONBLOCK), "F_GETFL is O_RDWR|O_NONBLOCK");
	errno = 0;
	CHECK(syscall(SYS_signalfd4, -1, &usr1, 4, 0) == -1 && errno == EINVAL, "sizemask 4 is EINVAL");
	errno = 0;
	CHECK(signalfd(-1, &usr1, 0x10) == -1 && errno == EINVAL, "unknown flag is EINVAL");
	int p[2];
	CHECK(pipe(p) == 0, "pipe");
	errno = 0;
	CHECK(signalfd(p[0], &usr1, 0) == -1 && errno == EINVAL, "a pipe is not a signalfd: EINVAL");
	errno = 0;
	CHECK(signalfd(999, &usr1, 0) == -1 && errno == EBADF, "bad fd is EBADF");

	/* Nothing pending. */
	errno = 0;
	CHECK(read(fd, si, sizeof si) == -1 && errno == EAGAIN, "empty: EAGAIN");
	errno = 0;
	CHECK(read(fd, si, 64) == -1 && errno == EINVAL, "64-byte buffer is EINVAL");
	struct pollfd pf = { .fd = fd, .events = POLLIN };
	CHECK(poll(&pf, 1, 0) == 0, "empty: not readable");

	/* raise (tgkill): SI_TKILL with our pid. */
	raise(SIGUSR1);
	pf.revents = 0;
	CHECK(poll(&pf, 1, 0) == 1 && pf.revents == POLLIN, "pending: POLLIN");
	memset(si, 0, sizeof si);
	CHECK(read(fd, si, sizeof si) == 128, "read one siginfo");
	CHECK(si[0].ssi_signo == SIGUSR1 && si[0].ssi_code == SI_TKILL && si[0].ssi_pid == (uint32_t)getpid() && si[0].ssi_uid == getuid(),
	      "SIGUSR1 from tgkill: signo, code, pid, uid");
	errno = 0;
	CHECK(read(fd, si, sizeof si) == -1 && errno == EAGAIN, "consumed");
	sigset_t pend;
	sigpending(&pend);
	CHECK(!sigismember(&pend, SIGUSR1), "no longer pending");

	/* kill: SI_USER. Signals outside the mask are left alone. */
	kill(getpid(), SIGUSR1);
	kill(getpid(), SIGUSR2);
	memset(si, 0, sizeof si);
	CHECK(read(fd, si, sizeof si) == 128 && si[0].ssi_signo == SIGUSR1 && si[0].ssi_code == SI_USER, "SIGUSR1 from kill: SI_USER");
	sigpending(&pend);
	CHECK(sigismember(&pend, SIGUSR2), "SIGUSR2 stays pending");

	/* Changing the mask through the existing fd. */
	CHECK(signalfd(fd, &usr2, 0) == fd, "signalfd(fd, {USR2}) returns fd");
	memset(si, 0, sizeof si);
	CHECK(read(fd, si, sizeof si) == 128 && si[0].ssi_signo == SIGUSR2, "now reads SIGUSR2");
	sigset_t withkill = usr1;
	sigaddset(&withkill, SIGKILL);
	sigaddset(&withkill, SIGSTOP);
	CHECK(signalfd(fd, &withkill, 0) == fd, "SIGKILL/SIGSTOP in the mask are ignored");

	/* Queued real-time signals with values. */
	int rfd = signalfd(-1, &rtmin, SFD_NONBLOCK);
	union sigval sv;
	sv.sival_int = 42;
	sigqueue(getpid(), SIGRTMIN, sv);
	sv.sival_int = 43;
	sigqueue(getpid(), SIGRTMIN, sv);
	memset(si, 0, sizeof si);
	CHECK(read(rfd, si, sizeof si) == 256, "two queued SIGRTMIN in one read");
	CHECK(si[0].ssi_signo == (uint32_t)SIGRTMIN && si[0].ssi_code == SI_QUEUE && si[0].ssi_int == 42 && si[1].ssi_int == 43,
	      "SI_QUEUE with values 42 and 43 in order");
	close(rfd);

	/* Blocking read, woken by a signal from another process. */
	int bfd = signalfd(-1, &usr1, 0);
	pid_t pid = send_later(SIGUSR1);
	memset(si, 0, sizeof si);
	CHECK(read(bfd, si, sizeof si) == 128 && si[0].ssi_signo == SIGUSR1 && si[0].ssi_pid == (uint32_t)pid, "blocking read: SIGUSR1 from the child");
	CHECK(reaped_ok(pid), "sender exit 0");

	/* poll, select and epoll wake on signal arrival. */
	pid = send_later(SIGUSR1);
	pf.fd = bfd;
	pf.revents = 0;
	CHECK(poll(&pf, 1, 5000) == 1 && pf.revents == POLLIN, "poll woken by a signal");
	CHECK(reaped_ok(pid), "sender exit 0");
	CHECK(read(bfd, si, sizeof si) == 128, "read it");
	pid = send_later(SIGUSR1);
	fd_set rs;
	FD_ZERO(&rs);
	FD_SET(bfd, &rs);
	struct timeval tv = { 5, 0 };
	CHECK(select(bfd + 1, &rs, NULL, NULL, &tv) == 1 && FD_ISSET(bfd, &rs), "select woken by a signal");
	CHECK(reaped_ok(pid), "sender exit 0");
	CHECK(read(bfd, si, sizeof si) == 128, "read it");
	int ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 9 };
	CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, bfd, &ev) == 0, "epoll add signalfd");
	CHECK(epoll_wait(ep, &ev, 1, 0) == 0, "epoll: nothing yet");
	pid = send_later(SIGUSR1);
	CHECK(epoll_wait(ep, &ev, 1, 5000) == 1 && ev.data.u64 == 9 && ev.events == EPOLLIN, "epoll woken by a signal");
	CHECK(reaped_ok(pid), "sender exit 0");
	CHECK(read(bfd, si, sizeof si) == 128 && si[0].ssi_signo == SIGUSR1, "read it");
	CHECK(epoll_wait(ep, &ev, 1, 0) == 0, "epoll: consumed");

	close(ep);
	close(bfd);
	close(fd);
	close(p[0]);
	close(p[1]);
	if (failures) {
		printf("%d failures\n", failures);
		return 1;
	}
	printf("all ok\n");
	return 0;
}
