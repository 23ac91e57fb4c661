/* Loopback TCP throughput: a forked client streams MIB mebibytes (default 256) to the parent over
 * 127.0.0.1 in 128 KiB writes. Prints MB/s (10^6 bytes per second) measured by the receiver from
 * the moment it tells the client to start until EOF; prints "error" and exits 1 on any failure.
 * Usage: tcp_stream [MIB] */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (128 * 1024)

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

int main(int argc, char **argv)
{
	long mib = argc > 1 ? atol(argv[1]) : 256;
	if (mib <= 0)
		mib = 256;
	unsigned long long total = (unsigned long long)mib << 20;
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
		char go;
		if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof a) != 0 || read(c, &go, 1) != 1)
			_exit(2);
		char *buf = malloc(CHUNK);
		memset(buf, 'x', CHUNK);
		unsigned long long sent = 0;
		while (sent < total) {
			size_t n = total - sent < CHUNK ? (size_t)(total - sent) : CHUNK;
			ssize_t w = write(c, buf, n);
			if (w <= 0)
				_exit(3);
			sent += (unsigned long long)w;
		}
		_exit(0);
	}
	int s = accept(ls, NULL, NULL);
	if (s < 0)
		return fail("accept");
	char *buf = malloc(CHUNK);
	double t0 = now();
	if (write(s, "g", 1) != 1)
		return fail("write");
	unsigned long long got = 0;
	ssize_t r;
	while ((r = read(s, buf, CHUNK)) > 0)
		got += (unsigned long long)r;
	double t1 = now();
	int st = 0;
	waitpid(pid, &st, 0);
	if (r < 0 || got != total || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "tcp_stream: received %llu of %llu bytes, client status %d\n", got, total, st);
		printf("error\n");
		return 1;
	}
	printf("%.1f\n", (double)total / (t1 - t0) / 1e6);
	return 0;
}
