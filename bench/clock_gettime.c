/* Benchmark: cost of clock_gettime(CLOCK_MONOTONIC) through the C library (the vDSO when there is one); prints ns per call. */
#include <stdio.h>
#include <time.h>

#define ITERS 2000000L

static double now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(void)
{
	struct timespec t;
	for (long i = 0; i < 10000; i++) /* warm up */
		clock_gettime(CLOCK_MONOTONIC, &t);
	double t0 = now_ns();
	for (long i = 0; i < ITERS; i++)
		clock_gettime(CLOCK_MONOTONIC, &t);
	double t1 = now_ns();
	printf("%.1f\n", (t1 - t0) / ITERS);
	return 0;
}
