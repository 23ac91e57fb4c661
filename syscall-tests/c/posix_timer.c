/* Checks POSIX timers: default and explicit sigevents, one-shot and periodic SIGEV_SIGNAL (si_code, si_timerid, si_value), SIGEV_NONE with timer_gettime, TIMER_ABSTIME, old values, overruns while blocked, SIGEV_THREAD_ID, glibc's SIGEV_THREAD, handlers, timer_delete, fork and errnos. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int failures;

static const char *errname(int e)
{
	switch (e) {
	case 0: return "0";
	case EAGAIN: return "EAGAIN";
	case EINTR: return "EINTR";
	case EINVAL: return "EINVAL";
	case EFAULT: return "EFAULT";
	case EPERM: return "EPERM";
	case EOPNOTSUPP: return "EOPNOTSUPP";
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

/* Raw syscalls: the kernel's int timer ids, without glibc's wrapping. */
static int k_create(clockid_t c, struct sigevent *ev, int *id)
{
	return syscall(SYS_timer_create, c, ev, id);
}
static int k_settime(int id, int flags, const struct itimerspec *n, struct itimerspec *o)
{
	return syscall(SYS_timer_settime, id, flags, n, o);
}
static int k_gettime(int id, struct itimerspec *v)
{
	return syscall(SYS_timer_gettime, id, v);
}
static int k_getoverrun(int id)
{
	return syscall(SYS_timer_getoverrun, id);
}
static int k_delete(int id)
{
	return syscall(SYS_timer_delete, id);
}

static long long ns_of(struct timespec t)
{
	return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static long long now_ns(clockid_t c)
{
	struct timespec t;
	clock_gettime(c, &t);
	return ns_of(t);
}

static struct itimerspec its(long long value_ns, long long interval_ns)
{
	struct itimerspec v;
	v.it_value.tv_sec = value_ns / 1000000000LL;
	v.it_value.tv_nsec = value_ns % 1000000000LL;
	v.it_interval.tv_sec = interval_ns / 1000000000LL;
	v.it_interval.tv_nsec = interval_ns % 1000000000LL;
	return v;
}

static void block(int sig)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, sig);
	sigprocmask(SIG_BLOCK, &s, NULL);
}

/* Waits up to 5 s for `sig`; returns the signal or -1. */
static int wait_sig(int sig, siginfo_t *si)
{
	sigset_t s;
	struct timespec to = { 5, 0 };
	sigemptyset(&s);
	sigaddset(&s, sig);
	memset(si, 0, sizeof(*si));
	return sigtimedwait(&s, si, &to);
}

static void default_sigevent(void)
{
	int id = -1;
	siginfo_t si;
	struct itimerspec v = its(20000000, 0);
	block(SIGALRM);
	CHECK(k_create(CLOCK_MONOTONIC, NULL, &id) == 0, "create with NULL sigevent");
	printf("first timer id: %d\n", id);
	CHECK(k_settime(id, 0, &v, NULL) == 0, "arm one-shot 20ms");
	CHECK(wait_sig(SIGALRM, &si) == SIGALRM, "default signal is SIGALRM");
	printf("si_code SI_TIMER: %s\n", si.si_code == SI_TIMER ? "yes" : "no");
	printf("si_timerid == id: %s\n", si.si_timerid == id ? "yes" : "no");
	printf("si_value == id: %s\n", si.si_value.sival_int == id ? "yes" : "no");
	printf("si_overrun: %d\n", si.si_overrun);
	CHECK(k_gettime(id, &v) == 0, "gettime after one-shot");
	printf("one-shot remaining after expiry: %lld\n", ns_of(v.it_value));
	CHECK(k_delete(id) == 0, "delete");
}

static void periodic_signal(void)
{
	int id = -1, i, good = 0;
	siginfo_t si;
	struct sigevent ev;
	struct itimerspec v = its(10000000, 10000000), old;
	memset(&ev, 0, sizeof(ev));
	ev.sigev_notify = SIGEV_SIGNAL;
	ev.sigev_signo = SIGUSR1;
	ev.sigev_value.sival_int = 1234;
	block(SIGUSR1);
	CHECK(k_create(CLOCK_MONOTONIC, &ev, &id) == 0, "create SIGUSR1 timer");
	CHECK(k_settime(id, 0, &v, &old) == 0, "arm periodic 10ms");
	printf("old value of a new timer: %lld/%lld\n", ns_of(old.it_value), ns_of(old.it_interval));
	for (i = 0; i < 3; i++) {
		if (wait_sig(SIGUSR1, &si) == SIGUSR1 && si.si_code == SI_TIMER && si.si_value.sival_int == 1234 && si.si_timerid == id)
			good++;
	}
	printf("periodic signals with the right siginfo: %d of 3\n", good);
	CHECK(k_gettime(id, &v) == 0, "gettime periodic");
	printf("interval: %lld\n", ns_of(v.it_interval));
	printf("remaining in (0, 10ms]: %s\n", ns_of(v.it_value) > 0 && ns_of(v.it_value) <= 10000000 ? "yes" : "no");
	v = its(0, 0);
	CHECK(k_settime(id, 0, &v, &old) == 0, "disarm");
	printf("old interval: %lld\n", ns_of(old.it_interval));
	CHECK(k_gettime(id, &v) == 0, "gettime disarmed");
	printf("disarmed: %lld/%lld\n", ns_of(v.it_value), ns_of(v.it_interval));
	CHECK(k_delete(id) == 0, "delete");
	/* Drain a signal that may have been queued before the disarm. */
	struct timespec z = { 0, 0 };
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGUSR1);
	while (sigtimedwait(&s, &si, &z) == SIGUSR1)
		;
}

static void sigev_none(void)
{
	int id = -1;
	struct sigevent ev;
	struct itimerspec v = its(5000000000LL, 0), old;
	memset(&ev, 0, sizeof(ev));
	ev.sigev_notify = SIGEV_NONE;
	CHECK(k_create(CLOCK_MONOTONIC, &ev, &id) == 0, "create SIGEV_NONE");
	CHECK(k_settime(id, 0, &v, NULL) == 0, "arm 5s");
	CHECK(k_gettime(id, &v) == 0, "gettime");
	printf("remaining in (4s, 5s]: %s, interval %lld\n", ns_of(v.it_value) > 4000000000LL && ns_of(v.it_value) <= 5000000000LL ? "yes" : "no", ns_of(v.it_interval));
	v = its(3000000000LL, 1000000000LL);
	CHECK(k_settime(id, 0, &v, &old) == 0, "re-arm with old value");
	printf("old remaining in (4s, 5s]: %s\n", ns_of(old.it_value) > 4000000000LL && ns_of(old.it_value) <= 5000000000LL ? "yes" : "no");
	v = its(1000000, 0);
	CHECK(k_settime(id, 0, &v, NULL) == 0, "arm 1ms");
	usleep(20000);
	CHECK(k_gettime(id, &v) == 0, "gettime expired");
	printf("expired SIGEV_NONE: %lld/%lld\n", ns_of(v.it_value), ns_of(v.it_interval));
	printf("overrun of SIGEV_NONE: %d\n", k_getoverrun(id));
	CHECK(k_delete(id) == 0, "delete");
}

static void abstime(void)
{
	int id = -1;
	siginfo_t si;
	struct sigevent ev;
	long long start = now_ns(CLOCK_REALTIME);
	struct itimerspec v = its(start + 50000000, 0);
	memset(&ev, 0, sizeof(ev));
	ev.sigev_notify = SIGEV_SIGNAL;
	ev.sigev_signo = SIGUSR2;
	block(SIGUSR2);
	CHECK(k_create(CLOCK_REALTIME, &ev, &id) == 0, "create CLOCK_REALTIME");
	CHECK(k_settime(id, TIMER_ABSTIME, &v, NULL) == 0, "arm absolute now+50ms");
	CHECK(wait_sig(SIGUSR2, &si) == SIGUSR2, "absolute timer fired");
	printf("fired at or after the deadline: %s\n", now_ns(CLOCK_REALTIME) >= start + 50000000 ? "yes" : "no");
	printf("si_value from the sigevent: %d\n", si.si_value.sival_int);
	v = its(start - 1000000000LL, 0);
	CHECK(k_settime(id, TIMER_ABSTIME, &v, NULL) == 0, "arm absolute in the past");
	CHECK(wait_sig(SIGUSR2, &si) == SIGUSR2, "past deadline fires at once");
	CHECK(k_delete(id) == 0, "delete");

	CHECK(k_create(CLOCK_MONOTONIC, &ev, &id) == 0, "create CLOCK_MONOTONIC");
	start = now_ns(CLOCK_MONOTONIC);
	v = its(start + 30000000, 0);
	CHECK(k_settime(id, TIMER_ABSTIME, &v, NULL) == 0, "arm monotonic absolute now+30ms");
	CHECK(wait_sig(SIGUSR2, &si) == SIGUSR2, "monotonic absolute fired");
	printf("monotonic at or after the deadline: %s\n", now_ns(CLOCK_MONOTONIC) >= start + 30000000 ? "yes" : "no");
	CHECK(k_delete(id) == 0, "delete");
	CHECK(k_create(CLOCK_BOOTTIME, &ev, &id) == 0, "create CLOCK_BOOTTIME");
	CHECK(k_delete(id) == 0, "delete");
}

static void overrun(void)
{
	int id = -1, ov;
	siginfo_t si;
	struct sigevent ev;
	struct itimerspec v = its(10000000, 10000000);
	memset(&ev, 0, sizeof(ev));
	ev.sigev_notify = SIGEV_SIGNAL;
	ev.sigev_signo = SIGRTMIN + 5;
	block(SIGRTMIN + 5);
	CHECK(k_create(CLOCK_MONOTONIC, &ev, &id) == 0, "create RT timer");
	printf("overrun before any expiry: %d\n", k_getoverrun(id));
	CHECK(k_settime(id, 0, &v, NULL) == 0, "arm periodic 10ms");
	usleep(150000); /* ~15 periods with the signal blocked */
	CHECK(wait_sig(SIGRTMIN + 5, &si) == SIGRTMIN + 5, "blocked timer signal is pending");
	ov = k_getoverrun(id);
	printf("si_overrun>=5: %s\n", si.si_overrun >= 5 ? "yes" : "no");
	printf("timer_getoverrun == si_overrun: %s\n", ov == si.si_overrun ? "yes" : "no");
	/* Only one instance was queued, even for a real-time signal. */
	{
		struct timespec z = { 0, 0 };
		sigset_t s;
		int extra = 0;
		sigemptyset(&s);
		sigaddset(&s, SIGRTMIN + 5);
		v = its(0, 0);
		k_settime(id, 0, &v, NULL);
		while (sigtimedwait(&s, &si, &z) > 0)
			extra++;
		printf("queued instances after the first: %s\n", extra <= 1 ? "at most 1" : "many");
	}
	CHECK(k_delete(id) == 0, "delete");
}

static void errors(void)
{
	int id = -1, gone;
	struct sigevent ev;
	struct itimerspec v = its(1000000000, 0);
	memset(&ev, 0, sizeof(ev));
	ev.sigev_notify = SIGEV_NONE;
	CHECK(k_create(CLOCK_MONOTONIC, &ev, &gone) == 0, "create to delete");
	CHECK(k_delete(gone) == 0, "delete");
	errno = 0;
	CHECK(k_delete(gone) == -1 && errno == EINVAL, "delete twice EINVAL");
	errno = 0;
	CHECK(k_settime(gone, 0, &v, NULL) == -1 && errno == EINVAL, "settime deleted EINVAL");
	errno = 0;
	CHECK(k_gettime(gone, &v) == -1 && errno == EINVAL, "gettime deleted EINVAL");
	errno = 0;
	CHECK(k_getoverrun(gone) == -1 && errno == EINVAL, "getoverrun deleted EINVAL");
	errno = 0;
	CHECK(k_delete(12345) == -1 && errno == EINVAL, "delete unknown EINVAL");
	errno = 0;
	CHECK(k_create(99, &ev, &id) == -1 && errno == EINVAL, "bad clock EINVAL");
	errno = 0;
	CHECK(k_create(CLOCK_MONOTONIC_RAW, &ev, &id) == -1 && errno == EOPNOTSUPP, "CLOCK_MONOTONIC_RAW EOPNOTSUPP");
	ev.sigev_notify = 99;
	errno = 0;
	CHECK(k_create(CLOCK_MONOTONIC, &ev, &id) == -1 && errno == EINVAL, "bad sigev_notify EINVAL");
	ev.sigev_notify = SIGEV_SIGNAL;
	ev.sigev_signo = 0;
	errno = 0;
	CHECK(k_create(CLOCK_MONOTONIC, &ev, &id) == -1 && errno == EINVAL, "signal 0 EINVAL");
	ev.sigev_signo = 65;
	errno = 0;
	CHECK(k_create(CLOCK_MONOTONIC, &ev, &id) == -1 && errno == EINVAL, "signal 65 EINVAL");
	ev.sigev_signo = SIGUSR1;
	ev.sigev_notify = SIGEV_THREAD_ID;
	ev._sigev_un._tid = getppid();
	errno = 0;
	CHECK(k_create(CLOCK_MONOTONIC, &ev, &id) == -1 && errno == EINVAL, "SIGEV_THREAD_ID of another process EINVAL");
	errno = 0;
	CHECK(k_create(CLOCK_MONOTONIC, (struct sigevent *)8, &id) == -1 && errno == EFAULT, "bad sigevent pointer EFAULT");
	ev.sigev_notify = SIGEV_NONE;
	CHECK(k_create(CLOCK_MONOTONIC, &ev, &id) == 0, "create");
	v.it_value.tv_nsec = 1000000000;
	errno = 0;
	CHECK(k_settime(id, 0, &v, NULL) == -1 && errno == EINVAL, "nsec 1e9 EINVAL");
	v = its(1000000, 0);
	v.it_interval.tv_sec = -1;
	errno = 0;
	CHECK(k_settime(id, 0, &v, NULL) == -1 && errno == EINVAL, "negative interval EINVAL");
	errno = 0;
	CHECK(k_settime(id, 0, NULL, NULL) == -1 && errno == EINVAL, "NULL new value EINVAL");
	CHECK(k_delete(id) == 0, "delete");
}

static void thread_id(void)
{
	int id = -1;
	siginfo_t si;
	struct sigevent ev;
	struct itimerspec v = its(10000000, 0);
	memset(&ev, 0, sizeof(ev));
	ev.sigev_notify = SIGEV_THREAD_ID;
	ev.sigev_signo = SIGUSR1;
	ev.sigev_value.sival_int = 42;
	ev._sigev_un._tid = gettid();
	block(SIGUSR1);
	CHECK(k_create(CLOCK_MONOTONIC, &ev, &id) == 0, "create SIGEV_THREAD_ID to self");
	CHECK(k_settime(id, 0, &v, NULL) == 0, "arm");
	CHECK(wait_sig(SIGUSR1, &si) == SIGUSR1, "thread-directed timer signal");
	printf("thread timer siginfo: code %s value %d\n", si.si_code == SI_TIMER ? "SI_TIMER" : "other", si.si_value.sival_int);
	CHECK(k_delete(id) == 0, "delete");
}

static volatile sig_atomic_t handler_code, handler_value, handler_hits;
static void on_rt(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	handler_code = si->si_code;
	handler_value = si->si_value.sival_int;
	handler_hits++;
}

static void handler(void)
{
	int id = -1, i;
	struct sigaction sa;
	struct sigevent ev;
	struct itimerspec v = its(5000000, 5000000);
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_rt;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGRTMIN + 4, &sa, NULL);
	memset(&ev, 0, sizeof(ev));
	ev.sigev_notify = SIGEV_SIGNAL;
	ev.sigev_signo = SIGRTMIN + 4;
	ev.sigev_value.sival_int = 7;
	CHECK(k_create(CLOCK_MONOTONIC, &ev, &id) == 0, "create handler timer");
	CHECK(k_settime(id, 0, &v, NULL) == 0, "arm periodic 5ms");
	for (i = 0; i < 400 && handler_hits < 3; i++)
		usleep(5000);
	CHECK(k_delete(id) == 0, "delete");
	printf("handler ran 3 times: %s, code %s, value %d\n", handler_hits >= 3 ? "yes" : "no", handler_code == SI_TIMER ? "SI_TIMER" : "other", (int)handler_value);
}

static volatile int thread_value = -1;
static void on_thread(union sigval v)
{
	thread_value = v.sival_int;
}

static void sigev_thread(void)
{
	timer_t tid;
	int i;
	struct sigevent ev;
	struct itimerspec v = its(20000000, 0);
	memset(&ev, 0, sizeof(ev));
	ev.sigev_notify = SIGEV_THREAD;
	ev.sigev_notify_function = on_thread;
	ev.sigev_value.sival_int = 77;
	CHECK(timer_create(CLOCK_MONOTONIC, &ev, &tid) == 0, "glibc SIGEV_THREAD create");
	CHECK(timer_settime(tid, 0, &v, NULL) == 0, "glibc settime");
	for (i = 0; i < 400 && thread_value == -1; i++)
		usleep(5000);
	printf("SIGEV_THREAD callback value: %d\n", thread_value);
	CHECK(timer_delete(tid) == 0, "glibc delete");
}

static void forked(void)
{
	int id = -1, st = 0;
	struct sigevent ev;
	memset(&ev, 0, sizeof(ev));
	ev.sigev_notify = SIGEV_NONE;
	CHECK(k_create(CLOCK_MONOTONIC, &ev, &id) == 0, "create before fork");
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		struct itimerspec v;
		int cid = -1;
		errno = 0;
		int r = k_gettime(id, &v);
		printf("child sees the parent's timer: %s\n", r == 0 ? "yes" : errname(errno));
		k_create(CLOCK_MONOTONIC, &ev, &cid);
		printf("child's first timer id: %d\n", cid);
		fflush(stdout);
		_exit(0);
	}
	waitpid(pid, &st, 0);
	CHECK(k_delete(id) == 0, "parent's timer survives fork");
}

/* exec deletes the process's timers: the new image sees none. */
static void execed(void)
{
	int id = -1, st = 0;
	char arg[16];
	struct sigevent ev;
	memset(&ev, 0, sizeof(ev));
	ev.sigev_notify = SIGEV_NONE;
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		k_create(CLOCK_MONOTONIC, &ev, &id);
		snprintf(arg, sizeof(arg), "%d", id);
		execl("/proc/self/exe", "posix_timer", "exec-check", arg, (char *)NULL);
		_exit(127);
	}
	waitpid(pid, &st, 0);
	printf("exec'd child exit: %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 3 && strcmp(argv[1], "exec-check") == 0) {
		struct itimerspec v;
		errno = 0;
		int r = k_gettime(atoi(argv[2]), &v);
		printf("timer after exec: %s\n", r == 0 ? "still there" : errname(errno));
		return 0;
	}
	default_sigevent();
	periodic_signal();
	sigev_none();
	abstime();
	overrun();
	errors();
	thread_id();
	handler();
	sigev_thread();
	forked();
	execed();
	printf("failures: %d\n", failures);
	return failures != 0;
}
