/* Checks that select() writes the remaining time back into its timeval (Linux behaviour), on timeout and on early wakeup. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <sys/select.h>
#include <sys/time.h>
#include <unistd.h>

static int failures;

static const char *errname(int e)
{
	switch (e) {
	case 0: return "0";
	case EINTR: return "EINTR";
	case EINVAL: return "EINVAL";
	case EBADF: return "EBADF";
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

int main(void)
{
	int p[2];
	CHECK(pipe(p) == 0, "pipe");

	/* Timeout: the timeval is zero afterwards. */
	fd_set rfds;
	FD_ZERO(&rfds);
	FD_SET(p[0], &rfds);
	struct timeval tv = { 0, 50000 };
	CHECK(select(p[0] + 1, &rfds, NULL, NULL, &tv) == 0, "select times out");
	CHECK(tv.tv_sec == 0 && tv.tv_usec == 0, "select updates timeout to zero");

	/* Ready at once: the timeval keeps (almost all of) its value. */
	CHECK(write(p[1], "x", 1) == 1, "write");
	FD_ZERO(&rfds);
	FD_SET(p[0], &rfds);
	tv.tv_sec = 5;
	tv.tv_usec = 0;
	CHECK(select(p[0] + 1, &rfds, NULL, NULL, &tv) == 1, "select ready");
	CHECK(tv.tv_sec >= 4 && tv.tv_sec <= 5 && tv.tv_usec >= 0 && tv.tv_usec < 1000000 &&
	      !(tv.tv_sec == 5 && tv.tv_usec != 0), "remaining time is at most the request");

	/* pselect never modifies its timespec. */
	struct timespec ts = { 0, 30000000 };
	char c;
	CHECK(read(p[0], &c, 1) == 1, "drain");
	FD_ZERO(&rfds);
	FD_SET(p[0], &rfds);
	CHECK(pselect(p[0] + 1, &rfds, NULL, NULL, &ts, NULL) == 0, "pselect times out");
	CHECK(ts.tv_sec == 0 && ts.tv_nsec == 30000000, "pselect timespec unchanged");

	if (failures) {
		printf("%d failures\n", failures);
		return 1;
	}
	printf("all ok\n");
	return 0;
}
