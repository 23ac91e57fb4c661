/* Loopback TCP request/response latency: the parent sends 1 byte to a forked echo client over
 * 127.0.0.1 (TCP_NODELAY on both ends) and waits for it to come back, COUNT times (default 5000)
 * after 100 untimed warm-up round trips. Prints microseconds per round trip; prints "error" and
 * exits 1 on any failure. Usage: tcp_rr [COUNT] */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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
	long count = argc > 1 ? atol(argv[1]) : 5000;
	if (count <= 0)
		count = 5000;
	int one = 1;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof a;
	int ls = socket(AF_INET, SOCK_STREAM, 0);
	if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) != 0 || listen(ls, 1) != 0 ||
	    getsockname(ls, (struct sockaddr *)&a, &al) != 0)
		return fail("listen");
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		return fail("fork");
	if (pid == 0) {
		close(ls);
		int c = socket(AF_INET, SOCK_STREAM, 0);
		if (c < 0 || setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
		    connect(c, (struct sockaddr *)&a, sizeof a) != 0)
			_exit(2);
		char b;
		ssize_t r;
		while ((r = read(c, &b, 1)) == 1)
			if (write(c, &b, 1) != 1)
				_exit(3);
		_exit(r == 0 ? 0 : 4);
	}
	int s = accept(ls, NULL, NULL);
	if (s < 0 || setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
		return fail("accept");
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
		fprintf(stderr, "tcp_rr: echo client status %d\n", st);
		printf("error\n");
		return 1;
	}
	printf("%.2f\n", (t1 - t0) / (double)count * 1e6);
	return 0;
}
