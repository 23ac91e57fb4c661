/* Unix-socket request/response latency: the parent sends 1 byte over a socketpair(AF_UNIX,
 * SOCK_STREAM) to a forked echo child and waits for it to come back, COUNT times (default 20000)
 * after 100 untimed warm-up round trips. Prints microseconds per round trip; "error" and exit 1 on
 * failure. Usage: unix_rr [COUNT] */
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fail(const char *what)
{
	perror(what);
	printf("error\n");
	return 1;
}

static int ping(int s)
{
	char b = 'p';
	return write(s, &b, 1) == 1 && read(s, &b, 1) == 1 ? 0 : -1;
}

int main(int argc, char **argv)
{
	long count = argc > 1 ? atol(argv[1]) : 20000;
	if (count <= 0)
		count = 20000;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		return fail("socketpair");
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		return fail("fork");
	if (pid == 0) {
		close(sv[0]);
		char b;
		ssize_t r;
		while ((r = read(sv[1], &b, 1)) == 1)
			if (write(sv[1], &b, 1) != 1)
				_exit(3);
		_exit(r == 0 ? 0 : 4);
	}
	close(sv[1]);
	int s = sv[0];
	for (int i = 0; i < 100; i++)
		if (ping(s) != 0)
			return fail("warm-up");
	double t0 = now();
	for (long i = 0; i < count; i++)
		if (ping(s) != 0)
			return fail("ping");
	double t1 = now();
	close(s);
	int st = 0;
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "unix_rr: echo child status %d\n", st);
		printf("error\n");
		return 1;
	}
	printf("%.2f\n", (t1 - t0) / (double)count * 1e6);
	return 0;
}
