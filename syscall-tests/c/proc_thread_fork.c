/* Checks threads in a forked child: a thread returning or calling pthread_exit does not end the child process. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
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

static const char *status_str(int st, char *buf, size_t n)
{
	if (WIFEXITED(st))
		snprintf(buf, n, "exited %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, n, "signaled %d", WTERMSIG(st));
	else
		snprintf(buf, n, "other 0x%x", st);
	return buf;
}

static void *returns(void *arg)
{
	return arg;
}

static void *exits(void *arg)
{
	pthread_exit(arg);
}

/* 0: joined thread returns; 1: joined thread calls pthread_exit; 2: detached thread
 * returns while main sleeps; 3: main thread calls pthread_exit while another thread
 * finishes with exit(8). */
static void *late_exit(void *arg)
{
	(void)arg;
	struct timespec d = { 0, 50000000 };
	nanosleep(&d, NULL);
	exit(8);
}

static int child(int mode)
{
	pthread_t t;
	void *r = NULL;
	struct timespec d = { 0, 50000000 };
	switch (mode) {
	case 0:
		if (pthread_create(&t, NULL, returns, (void *)3) != 0 || pthread_join(t, &r) != 0)
			return 50;
		nanosleep(&d, NULL);
		return r == (void *)3 ? 7 : 51;
	case 1:
		if (pthread_create(&t, NULL, exits, (void *)4) != 0 || pthread_join(t, &r) != 0)
			return 50;
		nanosleep(&d, NULL);
		return r == (void *)4 ? 7 : 51;
	case 2:
		if (pthread_create(&t, NULL, returns, NULL) != 0 || pthread_detach(t) != 0)
			return 50;
		nanosleep(&d, NULL);
		nanosleep(&d, NULL);
		return 7;
	case 3:
		if (pthread_create(&t, NULL, late_exit, NULL) != 0)
			return 50;
		pthread_exit(NULL);
	}
	return 99;
}

int main(void)
{
	char buf[64];
	static const char *names[] = {
		"joined thread returned",
		"joined thread called pthread_exit",
		"detached thread returned",
		"main thread pthread_exit, other thread exit(8)",
	};
	for (int mode = 0; mode < 4; mode++) {
		fflush(stdout);
		pid_t pid = fork();
		if (pid == 0)
			exit(child(mode));
		CHECK(pid > 0, "fork");
		int st = 0;
		CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
		printf("forked child, %s: %s\n", names[mode], status_str(st, buf, sizeof buf));
	}
	if (failures) {
		printf("%d failures\n", failures);
		return 1;
	}
	printf("all ok\n");
	return 0;
}
