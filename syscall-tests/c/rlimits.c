/* Resource limits the kernel enforces: RLIMIT_NOFILE (EMFILE, dup2
 * EBADF), RLIMIT_FSIZE (short write, EFBIG, SIGXFSZ), RLIMIT_AS (mmap,
 * brk and malloc fail with ENOMEM), RLIMIT_NPROC for a non-root user
 * (fork fails with EAGAIN), and setrlimit's own rules. Each case runs in
 * a forked child; nothing printed depends on pids or addresses. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *ename(int e)
{
	switch (e) {
	case 0: return "ok";
	case EPERM: return "EPERM";
	case EINVAL: return "EINVAL";
	case EMFILE: return "EMFILE";
	case EBADF: return "EBADF";
	case EFBIG: return "EFBIG";
	case ENOMEM: return "ENOMEM";
	case EAGAIN: return "EAGAIN";
	default: return "other";
	}
}

static void report(const char *what, long r)
{
	printf("%s: %ld %s\n", what, r < 0 ? -1L : r, ename(r < 0 ? errno : 0));
	fflush(stdout);
}

static void wait_report(pid_t pid)
{
	int st;
	if (waitpid(pid, &st, 0) != pid)
		printf("  waitpid failed\n");
	else if (WIFEXITED(st))
		printf("  exit %d\n", WEXITSTATUS(st));
	else
		printf("  killed by %s\n", WTERMSIG(st) == SIGXFSZ ? "SIGXFSZ" : "other");
	fflush(stdout);
}

#define CASE(name) \
	for (int once_ = (printf("%s\n", name), fflush(stdout), 1); once_; once_ = 0) \
		for (pid_t pid_ = fork(); pid_ >= 0 && once_; once_ = 0, pid_ ? wait_report(pid_) : exit(0)) \
			if (pid_ == 0)

static int limit(int res, rlim_t soft, rlim_t hard)
{
	struct rlimit r = { soft, hard };
	return setrlimit(res, &r);
}

static int sigxfsz_seen;
static void on_xfsz(int sig)
{
	(void)sig;
	sigxfsz_seen++;
}

int main(void)
{
	char file[64];
	snprintf(file, sizeof file, "/tmp/rlimits-test-%d", getpid());

	CASE("RLIMIT_NOFILE") {
		for (int fd = 3; fd < 64; fd++)
			close(fd);
		report("  set 8", limit(RLIMIT_NOFILE, 8, 8));
		int last = -1, n = 0;
		for (;;) {
			int fd = open("/dev/null", O_RDONLY);
			if (fd < 0)
				break;
			last = fd;
			n++;
		}
		printf("  opened %d, last fd %d, then %s\n", n, last, ename(errno));
		report("  dup2 to 7", dup2(0, 7));
		report("  dup2 to 8", dup2(0, 8));
		report("  F_DUPFD from 8", fcntl(0, F_DUPFD, 8));
		report("  raise soft to 20 (hard 8)", limit(RLIMIT_NOFILE, 20, 8));
	}

	CASE("RLIMIT_FSIZE, SIGXFSZ ignored") {
		signal(SIGXFSZ, SIG_IGN);
		int fd = open(file, O_CREAT | O_RDWR | O_TRUNC, 0644);
		report("  set 100", limit(RLIMIT_FSIZE, 100, RLIM_INFINITY));
		char buf[150];
		memset(buf, 'x', sizeof buf);
		report("  write 150", write(fd, buf, 150));
		report("  write 1 more", write(fd, buf, 1));
		report("  pwrite at 90, 20", pwrite(fd, buf, 20, 90));
		report("  pwrite at 10, 20", pwrite(fd, buf, 20, 10));
		report("  ftruncate 200", ftruncate(fd, 200));
		report("  ftruncate 50", ftruncate(fd, 50));
		report("  truncate 101", truncate(file, 101));
		struct stat st;
		fstat(fd, &st);
		printf("  size %ld\n", (long)st.st_size);
		int a = open(file, O_WRONLY | O_APPEND);
		report("  append 60 at 50", write(a, buf, 60));
		report("  append 1 more", write(a, buf, 1));
		/* Not regular files: no limit. */
		report("  write 150 to /dev/null", write(open("/dev/null", O_WRONLY), buf, 150));
		int p[2];
		pipe(p);
		report("  write 150 to a pipe", write(p[1], buf, 150));
	}

	CASE("RLIMIT_FSIZE, SIGXFSZ handled") {
		signal(SIGXFSZ, on_xfsz);
		int fd = open(file, O_CREAT | O_RDWR | O_TRUNC, 0644);
		limit(RLIMIT_FSIZE, 10, 10);
		char buf[20] = { 0 };
		report("  write 20", write(fd, buf, 20));
		report("  write 20", write(fd, buf, 20));
		printf("  SIGXFSZ seen %d\n", sigxfsz_seen);
	}

	CASE("RLIMIT_FSIZE, SIGXFSZ default") {
		int fd = open(file, O_CREAT | O_RDWR | O_TRUNC, 0644);
		limit(RLIMIT_FSIZE, 0, 0);
		report("  write 0 bytes", write(fd, "", 0));
		write(fd, "x", 1);
		printf("  survived\n");
	}

	CASE("RLIMIT_AS") {
		report("  set 256 MiB", limit(RLIMIT_AS, 256 << 20, RLIM_INFINITY));
		void *m = mmap(NULL, 512 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		report("  mmap 512 MiB", m == MAP_FAILED ? -1 : 0);
		m = mmap(NULL, 16 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		report("  mmap 16 MiB", m == MAP_FAILED ? -1 : 0);
		void *big = malloc(400 << 20);
		printf("  malloc 400 MiB: %s\n", big ? "ok" : "NULL");
		void *cur = sbrk(0);
		report("  sbrk 300 MiB", sbrk(300 << 20) == (void *)-1 ? -1 : 0);
		printf("  break moved: %d\n", sbrk(0) != cur);
		m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		void *r = mremap(m, 4096, 400 << 20, MREMAP_MAYMOVE);
		report("  mremap to 400 MiB", r == MAP_FAILED ? -1 : 0);
	}

	CASE("RLIMIT_NPROC, not root") {
		report("  set 1", limit(RLIMIT_NPROC, 1, 1));
		/* Root is exempt. */
		pid_t c = fork();
		if (c == 0)
			_exit(0);
		report("  fork as root", c < 0 ? -1 : 0);
		if (c > 0)
			waitpid(c, NULL, 0);
		if (setuid(54321))
			exit(3);
		c = fork();
		if (c == 0)
			_exit(0);
		report("  fork as 54321", c < 0 ? -1 : 0);
		if (c > 0)
			waitpid(c, NULL, 0);
	}

	CASE("RLIMIT_NPROC 2, not root") {
		limit(RLIMIT_NPROC, 2, 2);
		if (setuid(54322))
			exit(3);
		int p[2];
		pipe(p);
		pid_t c = fork();
		if (c == 0) {
			char b;
			read(p[0], &b, 1);
			_exit(0);
		}
		report("  first fork", c < 0 ? -1 : 0);
		pid_t d = fork();
		if (d == 0)
			_exit(0);
		report("  second fork", d < 0 ? -1 : 0);
		write(p[1], "x", 1);
		waitpid(c, NULL, 0);
		if (d > 0)
			waitpid(d, NULL, 0);
		d = fork();
		if (d == 0)
			_exit(0);
		report("  fork after the first child is reaped", d < 0 ? -1 : 0);
		if (d > 0)
			waitpid(d, NULL, 0);
	}

	CASE("setrlimit rules") {
		report("  soft above hard", limit(RLIMIT_CORE, 10, 5));
		report("  lower hard", limit(RLIMIT_CORE, 0, 1000));
		report("  bad resource", limit(99, 1, 1));
		if (setuid(1000))
			exit(3);
		report("  raise hard as 1000", limit(RLIMIT_CORE, 0, 2000));
		report("  lower hard as 1000", limit(RLIMIT_CORE, 0, 500));
		struct rlimit r;
		getrlimit(RLIMIT_CORE, &r);
		printf("  core: %lu %lu\n", (unsigned long)r.rlim_cur, (unsigned long)r.rlim_max);
	}
	unlink(file);
	return 0;
}
