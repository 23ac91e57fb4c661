/* Process creation: runs COMMAND COUNT times one after another (fork, execvp, waitpid), after one
 * untimed warm-up run when COUNT > 1, and prints the mean wall time per run in microseconds. The
 * children inherit stdio. Prints "error" and exits 1 if a run fails or exits non-zero.
 * Usage: spawn COUNT COMMAND [ARGS...] */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int run(char **argv)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		execvp(argv[0], argv);
		perror(argv[0]);
		_exit(127);
	}
	int st;
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "spawn: %s: status %d\n", argv[0], st);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	long count = argc > 2 ? atol(argv[1]) : 0;
	if (count <= 0) {
		fprintf(stderr, "usage: spawn COUNT COMMAND [ARGS...]\n");
		printf("error\n");
		return 1;
	}
	if (count > 1 && run(argv + 2) != 0)
		goto fail;
	double t0 = now();
	for (long i = 0; i < count; i++)
		if (run(argv + 2) != 0)
			goto fail;
	double t1 = now();
	printf("%.1f\n", (t1 - t0) / (double)count * 1e6);
	return 0;
fail:
	printf("error\n");
	return 1;
}
