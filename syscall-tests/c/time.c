/* Checks clocks: MONOTONIC never goes backwards, nanosleep(10 ms) sleeps >= 10 ms, gettimeofday/time agree with REALTIME. */
#include <stdio.h>
#include <sys/time.h>
#include <time.h>

static int failures;

static void report(const char *what, int ok)
{
	printf("%s: %s\n", what, ok ? "ok" : "fail");
	failures += !ok;
}

static long long ns(const struct timespec *t)
{
	return (long long)t->tv_sec * 1000000000LL + t->tv_nsec;
}

int main(void)
{
	struct timespec prev, cur;
	int ok = clock_gettime(CLOCK_MONOTONIC, &prev) == 0;
	for (int i = 0; i < 1000 && ok; i++) {
		ok = clock_gettime(CLOCK_MONOTONIC, &cur) == 0 && ns(&cur) >= ns(&prev);
		prev = cur;
	}
	report("CLOCK_MONOTONIC non-decreasing over 1000 calls", ok);

	struct timespec a, b, req = {0, 10 * 1000 * 1000};
	clock_gettime(CLOCK_MONOTONIC, &a);
	int r = nanosleep(&req, NULL);
	clock_gettime(CLOCK_MONOTONIC, &b);
	report("nanosleep returns 0", r == 0);
	report("nanosleep 10 ms takes >= 10 ms", ns(&b) - ns(&a) >= 10 * 1000 * 1000LL);

	struct timespec rt;
	struct timeval tv;
	int g1 = clock_gettime(CLOCK_REALTIME, &rt);
	int g2 = gettimeofday(&tv, NULL);
	time_t t = time(NULL);
	report("clock_gettime(REALTIME) and gettimeofday succeed", g1 == 0 && g2 == 0);
	long long d1 = (long long)tv.tv_sec - rt.tv_sec;
	long long d2 = (long long)t - rt.tv_sec;
	report("gettimeofday within 2 s of REALTIME", d1 >= -2 && d1 <= 2);
	report("time() within 2 s of REALTIME", d2 >= -2 && d2 <= 2);
	report("REALTIME is after 2020", rt.tv_sec > 1577836800LL);
	report("tv_usec in range", tv.tv_usec >= 0 && tv.tv_usec < 1000000);

	struct timespec res;
	report("clock_getres(MONOTONIC) <= 1 ms",
	       clock_getres(CLOCK_MONOTONIC, &res) == 0 && res.tv_sec == 0 && res.tv_nsec <= 1000000);

	printf("time %s\n", failures ? "FAILED" : "ok");
	return failures ? 1 : 0;
}
