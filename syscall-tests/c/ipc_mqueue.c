/* POSIX message queues: mq_open (O_CREAT, O_EXCL, attributes, bad names
 * and bad attributes), priorities (highest first, FIFO within one),
 * O_NONBLOCK's EAGAIN, absolute timeouts (ETIMEDOUT), EMSGSIZE, EBADF for
 * the wrong access mode, mq_getattr/mq_setattr, mq_notify with a signal
 * (SI_MESGQ, the value, EBUSY for a second registration, once only),
 * poll and epoll on the descriptor, reading its status line, a sender
 * woken by a receive, a receiver interrupted by a signal (EINTR), a child
 * sending to its parent across fork, permissions for an unprivileged
 * process, and mq_unlink. Queue names carry the
 * pid (never printed) so parallel native runs do not collide. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *en(int e)
{
	switch (e) {
	case 0: return "ok";
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case EINTR: return "EINTR";
	case EBADF: return "EBADF";
	case EAGAIN: return "EAGAIN";
	case EACCES: return "EACCES";
	case EFAULT: return "EFAULT";
	case EBUSY: return "EBUSY";
	case EEXIST: return "EEXIST";
	case EINVAL: return "EINVAL";
	case EMFILE: return "EMFILE";
	case ENOSPC: return "ENOSPC";
	case ENAMETOOLONG: return "ENAMETOOLONG";
	case EMSGSIZE: return "EMSGSIZE";
	case ETIMEDOUT: return "ETIMEDOUT";
	case ENOSYS: return "ENOSYS";
	default: return "E?";
	}
}

#define R(what, expr)                                                 \
	do {                                                          \
		errno = 0;                                            \
		long r_ = (long)(expr);                               \
		printf("%s: %s\n", what, r_ == -1 ? en(errno) : "ok"); \
	} while (0)

static char names[4][64];

static const char *qname(int i)
{
	return names[i];
}

static volatile sig_atomic_t got_sig, got_code, got_val;

static void on_sig(int sig, siginfo_t *si, void *ctx)
{
	(void)ctx;
	got_sig = sig;
	got_code = si->si_code;
	got_val = si->si_value.sival_int;
}

static void on_alarm(int sig)
{
	(void)sig;
}

static struct timespec in_ms(long ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

/* Empties the queue without blocking (a deadline already past). */
static void drain(mqd_t q)
{
	char b[8192];
	struct timespec past = {0, 0};
	while (mq_timedreceive(q, b, sizeof b, NULL, &past) >= 0)
		;
}

static void show_attr(const char *what, mqd_t q)
{
	struct mq_attr a;
	if (mq_getattr(q, &a) == -1) {
		printf("%s: getattr %s\n", what, en(errno));
		return;
	}
	printf("%s: flags=%s maxmsg=%ld msgsize=%ld curmsgs=%ld\n", what, (a.mq_flags & O_NONBLOCK) ? "O_NONBLOCK" : "0",
	       a.mq_maxmsg, a.mq_msgsize, a.mq_curmsgs);
}

static void status_line(const char *what, mqd_t q)
{
	char buf[128] = {0};
	lseek(q, 0, SEEK_SET);
	ssize_t n = read(q, buf, sizeof buf - 1);
	if (n < 0) {
		printf("%s: read %s\n", what, en(errno));
		return;
	}
	/* NOTIFY_PID is a pid: keep only whether it is set. */
	char *p = strstr(buf, "NOTIFY_PID:");
	int has_pid = p && atoi(p + 11) != 0;
	if (p)
		*p = 0;
	printf("%s: [%s] pid %s, len %zd\n", what, buf, has_pid ? "set" : "0", n);
}

int main(void)
{
	for (int i = 0; i < 4; i++)
		snprintf(names[i], sizeof names[i], "/rvisor-mqt-%d-%d", (int)getpid(), i);
	for (int i = 0; i < 4; i++)
		mq_unlink(qname(i));

	/* Names and attributes. */
	R("open no slash", mq_open("noslash", O_RDWR | O_CREAT, 0600, NULL));
	R("open inner slash", mq_open("/a/b", O_RDWR | O_CREAT, 0600, NULL));
	R("open slash only", mq_open("/", O_RDWR | O_CREAT, 0600, NULL));
	char longname[300];
	longname[0] = '/';
	memset(longname + 1, 'x', 280);
	longname[281] = 0;
	R("open long name", mq_open(longname, O_RDWR | O_CREAT, 0600, NULL));
	R("open missing", mq_open(qname(0), O_RDWR, 0600, NULL));
	R("unlink missing", mq_unlink(qname(0)));
	struct mq_attr bad = {.mq_maxmsg = 0, .mq_msgsize = 16};
	R("maxmsg 0", mq_open(qname(0), O_RDWR | O_CREAT, 0600, &bad));
	bad.mq_maxmsg = 4;
	bad.mq_msgsize = -1;
	R("msgsize -1", mq_open(qname(0), O_RDWR | O_CREAT, 0600, &bad));
	bad.mq_maxmsg = 100000;
	bad.mq_msgsize = 16;
	R("maxmsg 100000", mq_open(qname(0), O_RDWR | O_CREAT, 0600, &bad));
	bad.mq_maxmsg = 4;
	bad.mq_msgsize = 1 << 25;
	R("msgsize 32M", mq_open(qname(0), O_RDWR | O_CREAT, 0600, &bad));
	R("bad attr pointer", mq_open(qname(0), O_RDWR | O_CREAT, 0600, (struct mq_attr *)8));

	/* A default queue. */
	mqd_t d = mq_open(qname(1), O_RDWR | O_CREAT | O_EXCL, 0600, NULL);
	printf("default open: %s\n", d == (mqd_t)-1 ? en(errno) : "ok");
	show_attr("default", d);
	printf("cloexec: %d\n", (fcntl(d, F_GETFD) & FD_CLOEXEC) != 0);
	printf("getfl accmode: %d\n", fcntl(d, F_GETFL) & O_ACCMODE);
	R("excl again", mq_open(qname(1), O_RDWR | O_CREAT | O_EXCL, 0600, NULL));
	mqd_t d2 = mq_open(qname(1), O_WRONLY);
	printf("reopen: %s\n", d2 == (mqd_t)-1 ? en(errno) : "ok");
	char big[8192];
	R("receive on write-only", mq_receive(d2, big, sizeof big, NULL));
	R("getattr on a pipe", ({ int pf[2]; pipe(pf); struct mq_attr x; int r = mq_getattr(pf[0], &x); close(pf[0]); close(pf[1]); r; }));
	mq_close(d2);
	mq_close(d);
	R("unlink default", mq_unlink(qname(1)));
	R("unlink again", mq_unlink(qname(1)));

	/* Priorities, sizes, nonblocking and timeouts. */
	struct mq_attr at = {.mq_maxmsg = 4, .mq_msgsize = 32};
	mqd_t q = mq_open(qname(0), O_RDWR | O_CREAT | O_NONBLOCK, 0600, &at);
	printf("open 4x32: %s\n", q == (mqd_t)-1 ? en(errno) : "ok");
	show_attr("empty", q);
	R("receive short buffer", mq_receive(q, big, 16, NULL));
	R("receive empty nonblock", mq_receive(q, big, sizeof big, NULL));
	R("send too big", mq_send(q, big, 33, 0));
	R("send bad prio", mq_send(q, "x", 1, 40000));
	R("send bad pointer", mq_send(q, (char *)8, 4, 0));
	const char *msgs[] = {"low-1", "high-1", "low-2", "high-2"};
	unsigned prios[] = {1, 7, 1, 7};
	for (int i = 0; i < 4; i++)
		R(msgs[i], mq_send(q, msgs[i], strlen(msgs[i]), prios[i]));
	R("send full nonblock", mq_send(q, "x", 1, 0));
	show_attr("full", q);
	status_line("status full", q);
	struct pollfd pf = {.fd = q, .events = POLLIN | POLLOUT};
	int pr_ = poll(&pf, 1, 0);
	printf("poll full: %d revents=%#x\n", pr_, pf.revents);

	struct mq_attr na = {.mq_flags = 0}, old;
	R("setattr blocking", mq_setattr(q, &na, &old));
	printf("old flags nonblock: %d\n", (old.mq_flags & O_NONBLOCK) != 0);
	na.mq_flags = O_NONBLOCK | O_APPEND;
	R("setattr bad flags", mq_setattr(q, &na, NULL));
	struct timespec ts = in_ms(50);
	R("timedsend full", mq_timedsend(q, "x", 1, 0, &ts));
	ts.tv_nsec = 2000000000L;
	R("timedsend bad timespec", mq_timedsend(q, "x", 1, 0, &ts));
	ts = in_ms(-1000);
	R("timedsend past deadline", mq_timedsend(q, "x", 1, 0, &ts));

	for (int i = 0; i < 4; i++) {
		unsigned pr = 99;
		ssize_t n = mq_receive(q, big, sizeof big, &pr);
		printf("receive %d: %zd '%.*s' prio %u\n", i, n, n > 0 ? (int)n : 0, big, pr);
	}
	ts = in_ms(50);
	R("timedreceive empty", mq_timedreceive(q, big, sizeof big, NULL, &ts));
	pf.revents = 0;
	pr_ = poll(&pf, 1, 0);
	printf("poll empty: %d revents=%#x\n", pr_, pf.revents);

	/* epoll sees a message arrive. */
	int ep = epoll_create1(0);
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 5};
	R("epoll add", epoll_ctl(ep, EPOLL_CTL_ADD, q, &ev));
	printf("epoll empty: %d\n", epoll_wait(ep, &ev, 1, 0));
	mq_send(q, "e", 1, 3);
	printf("epoll ready: %d data %u\n", epoll_wait(ep, &ev, 1, 100), ev.data.u32);
	mq_receive(q, big, sizeof big, NULL);
	close(ep);

	/* Notification by signal. */
	struct sigaction sa = {0};
	sa.sa_sigaction = on_sig;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGUSR1, &sa, NULL);
	struct sigevent sev = {0};
	sev.sigev_notify = SIGEV_SIGNAL;
	sev.sigev_signo = SIGUSR1;
	sev.sigev_value.sival_int = 1234;
	R("notify", mq_notify(q, &sev));
	R("notify again", mq_notify(q, &sev));
	status_line("status notify", q);
	sev.sigev_notify = 77;
	R("notify bad kind", mq_notify(q, &sev));
	sev.sigev_notify = SIGEV_SIGNAL;
	sev.sigev_signo = 99;
	R("notify bad signal", mq_notify(q, &sev));
	R("send wakes notify", mq_send(q, "n", 1, 0));
	printf("signal: %d code SI_MESGQ %d value %d\n", got_sig == SIGUSR1, got_code == SI_MESGQ, (int)got_val);
	got_sig = 0;
	R("second send", mq_send(q, "m", 1, 0));
	printf("signal again: %d\n", got_sig != 0);
	status_line("status after notify", q);
	drain(q);
	sev.sigev_notify = SIGEV_NONE;
	R("notify none", mq_notify(q, &sev));
	status_line("status none", q);
	R("notify remove", mq_notify(q, NULL));
	R("notify remove twice", mq_notify(q, NULL));

	/* A child's notification blocks ours until it closes. */
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		sev.sigev_notify = SIGEV_NONE;
		_exit(mq_notify(q, &sev) == 0 ? 0 : 1);
	}
	int st;
	waitpid(c, &st, 0);
	printf("child registered: %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	sev.sigev_notify = SIGEV_NONE;
	R("notify after child exit", mq_notify(q, &sev));
	R("notify remove again", mq_notify(q, NULL));

	/* A receiver interrupted by a signal without SA_RESTART. */
	struct sigaction al = {0};
	al.sa_handler = on_alarm;
	sigaction(SIGALRM, &al, NULL);
	ualarm(50000, 0);
	R("receive interrupted", mq_receive(q, big, sizeof big, NULL));

	/* A sender blocked on a full queue, woken by the parent's receive. */
	for (int i = 0; i < 4; i++)
		mq_send(q, "f", 1, 0);
	fflush(stdout);
	c = fork();
	if (c == 0) {
		struct timespec t2 = in_ms(5000);
		int r = mq_timedsend(q, "child", 5, 9, &t2);
		_exit(r == 0 ? 0 : 1);
	}
	usleep(100000);
	mq_receive(q, big, sizeof big, NULL);
	waitpid(c, &st, 0);
	printf("blocked sender: %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	unsigned pr = 0;
	ssize_t n = mq_receive(q, big, sizeof big, &pr);
	printf("first now: '%.*s' prio %u\n", n > 0 ? (int)n : 0, big, pr);
	drain(q);

	/* Parent blocked receiving, child sends through a fresh open. */
	fflush(stdout);
	c = fork();
	if (c == 0) {
		usleep(50000);
		mqd_t w = mq_open(qname(0), O_WRONLY);
		int r = w == (mqd_t)-1 ? -1 : mq_send(w, "from child", 10, 2);
		_exit(r == 0 ? 0 : 1);
	}
	pr = 0;
	n = mq_receive(q, big, sizeof big, &pr);
	printf("from child: %zd '%.*s' prio %u\n", n, n > 0 ? (int)n : 0, big, pr);
	waitpid(c, &st, 0);
	printf("child sender: %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);

	/* Unlinked while open: the descriptor keeps working, the name is gone. */
	R("unlink open queue", mq_unlink(qname(0)));
	R("open unlinked", mq_open(qname(0), O_RDWR));
	R("send after unlink", mq_send(q, "z", 1, 0));
	n = mq_receive(q, big, sizeof big, NULL);
	printf("receive after unlink: %zd\n", n);
	R("close", mq_close(q));
	R("close again", mq_close(q));

	/* Permissions: a queue without write permission for others. */
	mqd_t ro = mq_open(qname(2), O_RDWR | O_CREAT, 0400, &at);
	printf("ro create: %s\n", ro == (mqd_t)-1 ? en(errno) : "ok");
	fflush(stdout);
	c = fork();
	if (c == 0) {
		if (setuid(1000) != 0)
			_exit(9);
		errno = 0;
		mqd_t x = mq_open(qname(2), O_WRONLY);
		printf("unprivileged write open: %s\n", x == (mqd_t)-1 ? en(errno) : "ok");
		struct mq_attr big_attr = {.mq_maxmsg = 11, .mq_msgsize = 16};
		errno = 0;
		x = mq_open(qname(3), O_RDWR | O_CREAT, 0600, &big_attr);
		printf("unprivileged maxmsg 11: %s\n", x == (mqd_t)-1 ? en(errno) : "ok");
		fflush(stdout);
		_exit(0);
	}
	waitpid(c, &st, 0);
	mq_close(ro);
	R("unlink ro", mq_unlink(qname(2)));
	mq_unlink(qname(3));
	return 0;
}
