/* Benchmark: cost of a trivial syscall, syscall(SYS_getpid); prints ns per call. */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define ITERS 1000000L

static double now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(void)
{
	for (long i = 0; i < 10000; i++) /* warm up */
		syscall(SYS_getpid);
	double t0 = now_ns();
	for (long i = 0; i < ITERS; i++)
		syscall(SYS_getpid);
	double t1 = now_ns();
	printf("%.1f\n", (t1 - t0) / ITERS);
	return 0;
}
