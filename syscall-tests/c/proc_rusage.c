/* CPU-time accounting: getrusage (self, children, thread, bad who), times,
 * CLOCK_PROCESS_CPUTIME_ID / CLOCK_THREAD_CPUTIME_ID; busy loops count,
 * sleeping does not, reaped children show up in RUSAGE_CHILDREN. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/times.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double tv(struct timeval t) { return t.tv_sec + t.tv_usec / 1e6; }

static double cpu(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static volatile unsigned long sink;
static volatile int hits;

static void on_tick(int sig)
{
	(void)sig;
	hits++;
}

static void spin(double secs)
{
	double end = cpu(CLOCK_MONOTONIC) + secs;
	while (cpu(CLOCK_MONOTONIC) < end)
		for (int i = 0; i < 10000; i++)
			sink += i;
}

int main(void)
{
	struct rusage r0, r1, rc, rt;
	getrusage(RUSAGE_SELF, &r0);
	double p0 = cpu(CLOCK_PROCESS_CPUTIME_ID);
	spin(0.3);
	getrusage(RUSAGE_SELF, &r1);
	double used = tv(r1.ru_utime) + tv(r1.ru_stime) - tv(r0.ru_utime) - tv(r0.ru_stime);
	printf("spinning 0.3 s counts: %s\n", used > 0.05 && used < 1.5 ? "yes" : "no");
	printf("process clock follows: %s\n", cpu(CLOCK_PROCESS_CPUTIME_ID) - p0 > 0.05 ? "yes" : "no");
	printf("thread clock counts: %s\n", cpu(CLOCK_THREAD_CPUTIME_ID) > 0.05 ? "yes" : "no");
	getrusage(RUSAGE_THREAD, &rt);
	printf("RUSAGE_THREAD counts: %s\n", tv(rt.ru_utime) + tv(rt.ru_stime) > 0.05 ? "yes" : "no");
	double s0 = cpu(CLOCK_PROCESS_CPUTIME_ID);
	usleep(300000);
	printf("sleeping costs little: %s\n", cpu(CLOCK_PROCESS_CPUTIME_ID) - s0 < 0.1 ? "yes" : "no");
	getrusage(RUSAGE_CHILDREN, &rc);
	printf("no children yet: %s\n", tv(rc.ru_utime) + tv(rc.ru_stime) < 0.05 ? "yes" : "no");
	pid_t c = fork();
	if (c == 0) {
		spin(0.3);
		_exit(0);
	}
	waitpid(c, NULL, 0);
	getrusage(RUSAGE_CHILDREN, &rc);
	printf("reaped child counts: %s\n", tv(rc.ru_utime) + tv(rc.ru_stime) > 0.05 ? "yes" : "no");
	struct tms tm;
	clock_t now = times(&tm);
	long hz = sysconf(_SC_CLK_TCK);
	printf("times: self %s, children %s, elapsed %s\n", (tm.tms_utime + tm.tms_stime) > hz / 20 ? "yes" : "no",
	       (tm.tms_cutime + tm.tms_cstime) > hz / 20 ? "yes" : "no", now > 0 ? "yes" : "no");
	/* CPU-time interval timers fire in a pure user-mode loop. */
	for (int which = ITIMER_VIRTUAL; which <= ITIMER_PROF; which++) {
		hits = 0;
		signal(which == ITIMER_VIRTUAL ? SIGVTALRM : SIGPROF, on_tick);
		struct itimerval v = { { 0, 20000 }, { 0, 20000 } }, cur;
		setitimer(which, &v, NULL);
		getitimer(which, &cur);
		while (hits < 3)
			sink++;
		struct itimerval off = { { 0, 0 }, { 0, 0 } };
		setitimer(which, &off, NULL);
		printf("%s: fired 3 times, interval %ld us, armed %s\n", which == ITIMER_VIRTUAL ? "ITIMER_VIRTUAL" : "ITIMER_PROF",
		       (long)cur.it_interval.tv_usec, cur.it_value.tv_usec > 0 || cur.it_value.tv_sec > 0 ? "yes" : "no");
	}
	errno = 0;
	int r = getrusage(5, &rc);
	printf("bad who: %d %s\n", r, errno == EINVAL ? "EINVAL" : "?");
	return 0;
}
