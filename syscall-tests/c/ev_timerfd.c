/* Checks timerfd: create flags and clocks, one-shot and interval expirations, TFD_TIMER_ABSTIME, old values, gettime, disarming, EINVAL/EAGAIN, poll and epoll readiness. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
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

static long long now_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static struct timespec ns_ts(long long ns)
{
	struct timespec ts = { ns / 1000000000LL, ns % 1000000000LL };
	return ts;
}

static int arm(int fd, int flags, long long value_ns, long long interval_ns, struct itimerspec *old)
{
	struct itimerspec its = { .it_interval = ns_ts(interval_ns), .it_value = ns_ts(value_ns) };
	return timerfd_settime(fd, flags, &its, old);
}

static long long ts_ns(struct timespec ts)
{
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(void)
{
	uint64_t v;
	struct itimerspec cur, old;

	/* Creation. */
	errno = 0;
	CHECK(timerfd_create(CLOCK_PROCESS_CPUTIME_ID, 0) == -1 && errno == EINVAL, "CPU-time clock is EINVAL");
	errno = 0;
	CHECK(timerfd_create(CLOCK_MONOTONIC, 0x10) == -1 && errno == EINVAL, "unknown flag is EINVAL");
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	CHECK(fd >= 0 && fcntl(fd, F_GETFD) == FD_CLOEXEC, "TFD_CLOEXEC");
	CHECK(fcntl(fd, F_GETFL) == O_RDWR, "F_GETFL is O_RDWR");
	int bt = timerfd_create(CLOCK_BOOTTIME, TFD_NONBLOCK);
	CHECK(bt >= 0 && fcntl(bt, F_GETFL) == (O_RDWR | O_NONBLOCK), "CLOCK_BOOTTIME with TFD_NONBLOCK");

	/* A fresh timer is disarmed. */
	memset(&cur, 0xff, sizeof cur);
	CHECK(timerfd_gettime(fd, &cur) == 0 && ts_ns(cur.it_value) == 0 && ts_ns(cur.it_interval) == 0, "fresh timer: zeros");
	errno = 0;
	CHECK(read(bt, &v, 8) == -1 && errno == EAGAIN, "disarmed nonblocking read is EAGAIN");

	/* One-shot, relative. */
	CHECK(arm(fd, 0, 50000000, 0, NULL) == 0, "arm 50 ms one-shot");
	CHECK(timerfd_gettime(fd, &cur) == 0 && ts_ns(cur.it_value) > 0 && ts_ns(cur.it_value) <= 50000000 && ts_ns(cur.it_interval) == 0,
	      "gettime: remaining in (0, 50 ms]");
	long long t0 = now_ns(CLOCK_MONOTONIC);
	v = 0;
	CHECK(read(fd, &v, 8) == 8 && v == 1, "blocking read: 1 expiration");
	CHECK(now_ns(CLOCK_MONOTONIC) - t0 >= 40000000, "after about 50 ms");
	CHECK(timerfd_gettime(fd, &cur) == 0 && ts_ns(cur.it_value) == 0, "expired one-shot is disarmed");
	uint32_t small;
	errno = 0;
	CHECK(read(fd, &small, 4) == -1 && errno == EINVAL, "4-byte read is EINVAL");

	/* Interval timer: expirations accumulate. */
	CHECK(arm(bt, 0, 20000000, 20000000, NULL) == 0, "arm 20 ms period");
	usleep(110000);
	v = 0;
	CHECK(read(bt, &v, 8) == 8 && v >= 4 && v <= 6, "about 5 expirations after 110 ms");
	errno = 0;
	CHECK(read(bt, &v, 8) == -1 && errno == EAGAIN, "counter reset by read");
	CHECK(timerfd_gettime(bt, &cur) == 0 && ts_ns(cur.it_interval) == 20000000 && ts_ns(cur.it_value) > 0 &&
	      ts_ns(cur.it_value) <= 20000000, "gettime: still armed, period 20 ms");
	memset(&old, 0, sizeof old);
	CHECK(arm(bt, 0, 0, 0, &old) == 0, "disarm");
	CHECK(ts_ns(old.it_interval) == 20000000 && ts_ns(old.it_value) > 0 && ts_ns(old.it_value) <= 20000000, "old value returned");
	usleep(50000);
	errno = 0;
	CHECK(read(bt, &v, 8) == -1 && errno == EAGAIN, "disarmed: no expirations");

	/* settime discards unread expirations. */
	CHECK(arm(bt, 0, 1000000, 0, NULL) == 0, "arm 1 ms");
	usleep(20000);
	struct pollfd pf = { .fd = bt, .events = POLLIN };
	CHECK(poll(&pf, 1, 0) == 1 && pf.revents == POLLIN, "expired: POLLIN");
	CHECK(arm(bt, 0, 10000000000LL, 0, NULL) == 0, "re-arm for 10 s");
	pf.revents = 0;
	CHECK(poll(&pf, 1, 0) == 0, "re-armed: not readable");
	errno = 0;
	CHECK(read(bt, &v, 8) == -1 && errno == EAGAIN, "re-armed: EAGAIN");

	/* Absolute times. */
	CHECK(arm(fd, TFD_TIMER_ABSTIME, now_ns(CLOCK_MONOTONIC) + 30000000, 0, NULL) == 0, "arm absolute monotonic +30 ms");
	v = 0;
	CHECK(read(fd, &v, 8) == 8 && v == 1, "absolute monotonic expires");
	CHECK(arm(fd, TFD_TIMER_ABSTIME, 1, 0, NULL) == 0, "arm absolute in the past");
	pf.fd = fd;
	pf.revents = 0;
	CHECK(poll(&pf, 1, 0) == 1 && pf.revents == POLLIN, "past deadline: readable at once");
	CHECK(read(fd, &v, 8) == 8 && v == 1, "past deadline: 1 expiration");
	CHECK(arm(fd, TFD_TIMER_ABSTIME, now_ns(CLOCK_MONOTONIC) - 95000000, 10000000, NULL) == 0, "absolute past with a period");
	v = 0;
	CHECK(read(fd, &v, 8) == 8 && v >= 9 && v <= 11, "missed periods are counted");
	arm(fd, 0, 0, 0, NULL);
	int rt = timerfd_create(CLOCK_REALTIME, 0);
	CHECK(rt >= 0, "CLOCK_REALTIME timer");
	CHECK(arm(rt, TFD_TIMER_ABSTIME, now_ns(CLOCK_REALTIME) + 30000000, 0, NULL) == 0, "arm absolute realtime +30 ms");
	CHECK(timerfd_gettime(rt, &cur) == 0 && ts_ns(cur.it_value) > 0 && ts_ns(cur.it_value) <= 30000000, "realtime: remaining in (0, 30 ms]");
	v = 0;
	CHECK(read(rt, &v, 8) == 8 && v == 1, "absolute realtime expires");

	/* Bad arguments. */
	struct itimerspec bad = { .it_value = { 0, 1000000000 } };
	errno = 0;
	CHECK(timerfd_settime(rt, 0, &bad, NULL) == -1 && errno == EINVAL, "nsec out of range is EINVAL");
	errno = 0;
	CHECK(arm(rt, 4, 1000, 0, NULL) == -1 && errno == EINVAL, "unknown settime flag is EINVAL");
	errno = 0;
	CHECK(arm(0, 0, 1000, 0, NULL) == -1 && errno == EINVAL, "settime on stdin is EINVAL");
	errno = 0;
	CHECK(timerfd_gettime(999, &cur) == -1 && errno == EBADF, "gettime on a bad fd is EBADF");

	/* poll and epoll wait for an expiration. */
	CHECK(arm(rt, 0, 30000000, 0, NULL) == 0, "arm 30 ms");
	pf.fd = rt;
	pf.revents = 0;
	CHECK(poll(&pf, 1, 5000) == 1 && pf.revents == POLLIN, "poll woken by the expiration");
	CHECK(read(rt, &v, 8) == 8 && v == 1, "read it");
	int ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 5 };
	CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0, "epoll add timerfd");
	CHECK(arm(fd, 0, 20000000, 20000000, NULL) == 0, "arm 20 ms period");
	struct epoll_event out;
	int ticks = 0;
	for (int i = 0; i < 3; i++) {
		if (epoll_wait(ep, &out, 1, 5000) == 1 && out.data.u64 == 5 && read(fd, &v, 8) == 8 && v >= 1)
			ticks++;
	}
	CHECK(ticks == 3, "epoll sees three periods");
	arm(fd, 0, 0, 0, NULL);
	CHECK(epoll_wait(ep, &out, 1, 50) == 0, "disarmed: epoll times out");

	close(ep);
	close(rt);
	close(bt);
	close(fd);
	if (failures) {
		printf("%d failures\n", failures);
		return 1;
	}
	printf("all ok\n");
	return 0;
}
