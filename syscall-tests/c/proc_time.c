/* Checks timers and timed waits: alarm+pause, setitimer, nanosleep EINTR/rem, clock_nanosleep TIMER_ABSTIME, poll and select timeouts on pipes. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int failures;

static const char *errname(int e)
{
	switch (e) {
	case 0: return "0";
	case EINTR: return "EINTR";
	case EINVAL: return "EINVAL";
	case EAGAIN: return "EAGAIN";
	case EFAULT: return "EFAULT";
	case EBADF: return "EBADF";
	case ECHILD: return "ECHILD";
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

static double now_mono(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static volatile sig_atomic_t alrm_hits, usr1_hits;
static void on_alrm(int sig)
{
	(void)sig;
	alrm_hits++;
}
static void on_usr1(int sig)
{
	(void)sig;
	usr1_hits++;
}

static int set_handler(int sig, void (*h)(int))
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = h;
	sigemptyset(&sa.sa_mask);
	return sigaction(sig, &sa, NULL);
}

int main(void)
{
	sigset_t empty;
	sigemptyset(&empty);
	sigprocmask(SIG_SETMASK, &empty, NULL);
	CHECK(set_handler(SIGALRM, on_alrm) == 0, "sigaction SIGALRM");
	CHECK(set_handler(SIGUSR1, on_usr1) == 0, "sigaction SIGUSR1");

	/* alarm(1) + pause(). */
	{
		CHECK(alarm(0) == 0, "no alarm pending initially");
		alrm_hits = 0;
		double t0 = now_mono();
		CHECK(alarm(1) == 0, "alarm(1)");
		errno = 0;
		int r = 0;
		while (alrm_hits == 0 && r == 0)
			r = pause();
		double el = now_mono() - t0;
		CHECK(r == -1 && errno == EINTR, "pause returns -1 EINTR");
		CHECK(alrm_hits == 1, "SIGALRM handler ran");
		CHECK(el >= 0.95, "alarm fired after about 1 s");
		CHECK(el < 10.0, "alarm fired in reasonable time");
		/* alarm returns the remaining seconds of a previous alarm. */
		alarm(100);
		unsigned left = alarm(0);
		CHECK(left >= 99 && left <= 100, "alarm returns remaining seconds");
	}

	/* setitimer ITIMER_REAL 50 ms. */
	{
		alrm_hits = 0;
		struct itimerval it;
		memset(&it, 0, sizeof it);
		it.it_value.tv_usec = 50000;
		sigset_t set, old;
		sigemptyset(&set);
		sigaddset(&set, SIGALRM);
		sigprocmask(SIG_BLOCK, &set, &old);
		double t0 = now_mono();
		CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0, "setitimer 50 ms");
		struct itimerval cur;
		CHECK(getitimer(ITIMER_REAL, &cur) == 0, "getitimer");
		CHECK(cur.it_value.tv_sec == 0 && cur.it_value.tv_usec > 0 && cur.it_value.tv_usec <= 50000,
		      "getitimer shows remaining time <= 50 ms");
		CHECK(cur.it_interval.tv_sec == 0 && cur.it_interval.tv_usec == 0, "getitimer interval zero");
		while (alrm_hits == 0)
			sigsuspend(&old);
		double el = now_mono() - t0;
		sigprocmask(SIG_SETMASK, &old, NULL);
		CHECK(alrm_hits == 1, "setitimer SIGALRM handler ran");
		CHECK(el >= 0.049, "setitimer fired after 50 ms");
		CHECK(getitimer(ITIMER_REAL, &cur) == 0 && cur.it_value.tv_sec == 0 && cur.it_value.tv_usec == 0,
		      "one-shot timer disarmed after firing");

		/* Periodic timer: 5 ticks of 20 ms. */
		alrm_hits = 0;
		it.it_value.tv_usec = 20000;
		it.it_interval.tv_usec = 20000;
		sigprocmask(SIG_BLOCK, &set, &old);
		t0 = now_mono();
		setitimer(ITIMER_REAL, &it, NULL);
		while (alrm_hits < 5)
			sigsuspend(&old);
		el = now_mono() - t0;
		memset(&it, 0, sizeof it);
		setitimer(ITIMER_REAL, &it, NULL);
		sigprocmask(SIG_SETMASK, &old, NULL);
		CHECK(alrm_hits >= 5, "periodic timer ticked 5 times");
		CHECK(el >= 0.099, "5 ticks took at least 100 ms");
	}

	/* nanosleep interrupted by a signal from a child; rem is filled in. */
	{
		usr1_hits = 0;
		pid_t parent = getpid();
		pid_t pid = xfork();
		if (pid == 0) {
			/* Keep poking until killed, in case one arrives before the sleep starts. */
			for (;;) {
				struct timespec d = { 0, 100000000 };
				nanosleep(&d, NULL);
				if (kill(parent, SIGUSR1) < 0)
					_exit(0);
			}
		}
		struct timespec req = { 10, 0 }, rem = { -1, -1 };
		errno = 0;
		int r = nanosleep(&req, &rem);
		int e = errno;
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		errno = e;
		CHECK(r == -1 && errno == EINTR, "nanosleep interrupted: -1 EINTR");
		CHECK(usr1_hits >= 1, "SIGUSR1 handler ran");
		CHECK(rem.tv_sec >= 0 && rem.tv_sec < 10 && rem.tv_nsec >= 0 && rem.tv_nsec < 1000000000,
		      "rem is a valid remaining time below the request");
		CHECK(rem.tv_sec >= 5, "rem is most of the request");
		struct timespec z = { 0, 0 };
		CHECK(nanosleep(&z, NULL) == 0, "nanosleep zero");
		struct timespec bad = { 0, 1000000000 };
		errno = 0;
		CHECK(nanosleep(&bad, NULL) == -1 && errno == EINVAL, "nanosleep tv_nsec out of range EINVAL");
	}

	/* clock_nanosleep TIMER_ABSTIME. */
	{
		struct timespec target;
		clock_gettime(CLOCK_MONOTONIC, &target);
		target.tv_nsec += 50000000;
		if (target.tv_nsec >= 1000000000) {
			target.tv_sec++;
			target.tv_nsec -= 1000000000;
		}
		int r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &target, NULL);
		struct timespec after;
		clock_gettime(CLOCK_MONOTONIC, &after);
		CHECK(r == 0, "clock_nanosleep TIMER_ABSTIME returns 0");
		CHECK(after.tv_sec > target.tv_sec || (after.tv_sec == target.tv_sec && after.tv_nsec >= target.tv_nsec),
		      "woke at or after the absolute target");
		/* A target in the past returns immediately. */
		target.tv_sec -= 5;
		double t0 = now_mono();
		CHECK(clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &target, NULL) == 0 && now_mono() - t0 < 1.0,
		      "clock_nanosleep past target returns at once");
		/* Relative clock_nanosleep on CLOCK_REALTIME. */
		struct timespec rel = { 0, 20000000 };
		t0 = now_mono();
		CHECK(clock_nanosleep(CLOCK_REALTIME, 0, &rel, NULL) == 0 && now_mono() - t0 >= 0.019,
		      "clock_nanosleep relative 20 ms");
	}

	/* poll on a pipe. */
	{
		int p[2];
		CHECK(pipe(p) == 0, "pipe");
		struct pollfd pf = { p[0], POLLIN, 0 };
		double t0 = now_mono();
		int r = poll(&pf, 1, 50);
		double el = now_mono() - t0;
		CHECK(r == 0 && pf.revents == 0, "poll empty pipe times out with 0");
		CHECK(el >= 0.049, "poll waited 50 ms");
		struct pollfd pw = { p[1], POLLOUT, 0 };
		CHECK(poll(&pw, 1, 0) == 1 && pw.revents == POLLOUT, "poll write end POLLOUT");
		CHECK(write(p[1], "x", 1) == 1, "write to pipe");
		pf.revents = 0;
		r = poll(&pf, 1, 50);
		CHECK(r == 1 && pf.revents == POLLIN, "poll returns POLLIN after write");
		/* A writer in a child wakes a blocked poll. */
		char c;
		read(p[0], &c, 1);
		pid_t pid = xfork();
		if (pid == 0) {
			struct timespec d = { 0, 30000000 };
			nanosleep(&d, NULL);
			_exit(write(p[1], "y", 1) == 1 ? 0 : 1);
		}
		pf.revents = 0;
		r = poll(&pf, 1, 10000);
		CHECK(r == 1 && pf.revents == POLLIN, "blocked poll woken by child's write");
		waitpid(pid, NULL, 0);
		read(p[0], &c, 1);
		close(p[1]);
		pf.revents = 0;
		r = poll(&pf, 1, 50);
		CHECK(r == 1 && (pf.revents & POLLHUP), "poll POLLHUP after writer closed");
		close(p[0]);
		/* A closed fd number gives POLLNVAL. */
		struct pollfd pn = { p[0], POLLIN, 0 };
		CHECK(poll(&pn, 1, 0) == 1 && pn.revents == POLLNVAL, "poll closed fd POLLNVAL");
	}

	/* select on a pipe. */
	{
		int p[2];
		CHECK(pipe(p) == 0, "pipe for select");
		fd_set rfds;
		FD_ZERO(&rfds);
		FD_SET(p[0], &rfds);
		struct timeval tv = { 0, 50000 };
		double t0 = now_mono();
		int r = select(p[0] + 1, &rfds, NULL, NULL, &tv);
		double el = now_mono() - t0;
		CHECK(r == 0, "select empty pipe times out with 0");
		CHECK(!FD_ISSET(p[0], &rfds), "select clears the fd set on timeout");
		CHECK(el >= 0.049, "select waited 50 ms");
		/* (Whether the timeout is updated is checked in proc_time_select.c.) */
		CHECK(write(p[1], "x", 1) == 1, "write to pipe for select");
		FD_ZERO(&rfds);
		FD_SET(p[0], &rfds);
		fd_set wfds;
		FD_ZERO(&wfds);
		FD_SET(p[1], &wfds);
		tv.tv_sec = 0;
		tv.tv_usec = 50000;
		r = select((p[0] > p[1] ? p[0] : p[1]) + 1, &rfds, &wfds, NULL, &tv);
		CHECK(r == 2 && FD_ISSET(p[0], &rfds) && FD_ISSET(p[1], &wfds), "select readable and writable");
		/* pselect with a NULL timeout woken by a child's write. */
		char c;
		read(p[0], &c, 1);
		pid_t pid = xfork();
		if (pid == 0) {
			struct timespec d = { 0, 30000000 };
			nanosleep(&d, NULL);
			_exit(write(p[1], "y", 1) == 1 ? 0 : 1);
		}
		FD_ZERO(&rfds);
		FD_SET(p[0], &rfds);
		r = pselect(p[0] + 1, &rfds, NULL, NULL, NULL, NULL);
		CHECK(r == 1 && FD_ISSET(p[0], &rfds), "pselect woken by child's write");
		waitpid(pid, NULL, 0);
		close(p[0]);
		close(p[1]);
		errno = 0;
		FD_ZERO(&rfds);
		FD_SET(p[0], &rfds);
		tv.tv_sec = 0;
		tv.tv_usec = 0;
		CHECK(select(p[0] + 1, &rfds, NULL, NULL, &tv) == -1 && errno == EBADF, "select closed fd EBADF");
	}

	if (failures) {
		printf("%d failures\n", failures);
		return 1;
	}
	printf("all ok\n");
	return 0;
}
