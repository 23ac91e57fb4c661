/* Futex ping-pong: two threads hand a turn back and forth through two futex words
 * (FUTEX_WAIT_PRIVATE / FUTEX_WAKE_PRIVATE, no spinning), COUNT times (default 100000) after 1000
 * untimed warm-up round trips. Prints round trips per second; "error" and exit 1 on failure.
 * Usage: futex_pp [COUNT] */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static atomic_int ping, pong;
static long total;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void wait_for(atomic_int *w)
{
	while (atomic_load(w) == 0)
		if (syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0) != 0 && errno != EAGAIN &&
		    errno != EINTR) {
			perror("futex wait");
			printf("error\n");
			exit(1);
		}
	atomic_store(w, 0);
}

static void post(atomic_int *w)
{
	atomic_store(w, 1);
	if (syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0) < 0) {
		perror("futex wake");
		printf("error\n");
		exit(1);
	}
}

static void *partner(void *arg)
{
	(void)arg;
	for (long i = 0; i < total; i++) {
		wait_for(&ping);
		post(&pong);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	long count = argc > 1 ? atol(argv[1]) : 100000;
	if (count <= 0)
		count = 100000;
	long warm = 1000;
	total = warm + count;
	pthread_t t;
	if (pthread_create(&t, NULL, partner, NULL) != 0) {
		printf("error\n");
		return 1;
	}
	for (long i = 0; i < warm; i++) {
		post(&ping);
		wait_for(&pong);
	}
	double t0 = now();
	for (long i = 0; i < count; i++) {
		post(&ping);
		wait_for(&pong);
	}
	double t1 = now();
	pthread_join(t, NULL);
	printf("%.0f\n", (double)count / (t1 - t0));
	return 0;
}
