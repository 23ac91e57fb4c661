/* Checks fork/wait semantics (exit codes, signals, WNOHANG, ECHILD), copy-on-write, vfork, execve and close-on-exec. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BUSYBOX "/bin/busybox"

static int failures;

static const char *errname(int e)
{
	switch (e) {
	case 0: return "0";
	case ENOENT: return "ENOENT";
	case ECHILD: return "ECHILD";
	case EINTR: return "EINTR";
	case EBADF: return "EBADF";
	case EINVAL: return "EINVAL";
	case EACCES: return "EACCES";
	case EAGAIN: return "EAGAIN";
	case ENOMEM: return "ENOMEM";
	case ENOEXEC: return "ENOEXEC";
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

/* fork() with stdout flushed first, so buffered output is never duplicated. */
static pid_t xfork(void)
{
	fflush(stdout);
	return fork();
}

static void msleep(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Describes a wait status deterministically. */
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

/* Forks, runs argv via execve in the child, returns the wait status (or -1). */
static int run_exec(char *const argv[])
{
	pid_t pid = xfork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		char *envp[] = { "PATH=/usr/bin:/bin", NULL };
		execve(argv[0], argv, envp);
		_exit(127);
	}
	int st = 0;
	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return st;
}

static int cow_var = 1;

int main(void)
{
	char buf[64];
	int st;
	pid_t pid;

	/* Opened first so it gets a small fd number (a single digit for the shell below). */
	int cloexec_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	int plain_fd = open("/dev/null", O_WRONLY);
	CHECK(cloexec_fd >= 0 && cloexec_fd < 10 && plain_fd >= 0 && plain_fd < 10, "open /dev/null fds");

	/* Plain fork + exit code. */
	pid = xfork();
	if (pid == 0)
		_exit(3);
	CHECK(pid > 0, "fork");
	st = 0;
	CHECK(waitpid(pid, &st, 0) == pid, "waitpid returns child pid");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 3, "child exit status 3");
	printf("child status: %s\n", status_str(st, buf, sizeof buf));

	/* exit() (not _exit) in the child, with a nonzero code above 127. */
	pid = xfork();
	if (pid == 0)
		exit(200);
	st = 0;
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 200, "child exit status 200");

	/* Child killed by SIGKILL. */
	pid = xfork();
	if (pid == 0) {
		for (;;)
			pause();
	}
	CHECK(kill(pid, SIGKILL) == 0, "kill child SIGKILL");
	st = 0;
	CHECK(waitpid(pid, &st, 0) == pid, "waitpid killed child");
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "child WTERMSIG 9");
	printf("killed child status: %s\n", status_str(st, buf, sizeof buf));

	/* Several children reaped with wait() in any order. */
	{
		pid_t kids[5];
		unsigned seen = 0;
		int ok = 1;
		for (int i = 0; i < 5; i++) {
			kids[i] = xfork();
			if (kids[i] == 0) {
				msleep(10 * (5 - i));
				_exit(10 + i);
			}
			if (kids[i] < 0)
				ok = 0;
		}
		for (int i = 0; i < 5 && ok; i++) {
			st = 0;
			pid_t w = wait(&st);
			int idx = -1;
			for (int j = 0; j < 5; j++)
				if (kids[j] == w)
					idx = j;
			if (idx < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 10 + idx)
				ok = 0;
			else
				seen |= 1u << idx;
		}
		CHECK(ok && seen == 0x1f, "wait reaps 5 children with matching statuses");
	}

	/* wait with no children left. */
	errno = 0;
	CHECK(wait(&st) == -1 && errno == ECHILD, "wait with no children ECHILD");
	errno = 0;
	CHECK(waitpid(-1, &st, WNOHANG) == -1 && errno == ECHILD, "waitpid WNOHANG no children ECHILD");

	/* WNOHANG on a running child: blocked reading a pipe until released. */
	{
		int p[2];
		CHECK(pipe(p) == 0, "pipe");
		pid = xfork();
		if (pid == 0) {
			char c;
			close(p[1]);
			ssize_t n = read(p[0], &c, 1);
			_exit(n == 1 && c == 'g' ? 7 : 1);
		}
		close(p[0]);
		msleep(20);
		CHECK(waitpid(pid, &st, WNOHANG) == 0, "waitpid WNOHANG on running child returns 0");
		CHECK(write(p[1], "g", 1) == 1, "release child");
		close(p[1]);
		st = 0;
		CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 7, "released child exit 7");
	}

	/* getppid in the child equals the parent's getpid. */
	{
		pid_t me = getpid();
		pid = xfork();
		if (pid == 0)
			_exit(getppid() == me ? 0 : 1);
		st = 0;
		waitpid(pid, &st, 0);
		printf("getppid in child vs parent getpid: %s\n",
		       WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "same" : "different");
		CHECK(pid != me && pid > 0, "child pid differs from parent pid");
	}

	/* Copy-on-write of a global. */
	pid = xfork();
	if (pid == 0) {
		cow_var = 2;
		_exit(cow_var == 2 ? 0 : 1);
	}
	st = 0;
	waitpid(pid, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child sees its own write");
	CHECK(cow_var == 1, "parent variable unchanged after child write");

	/* Copy-on-write of a 4 MiB heap buffer. */
	{
		size_t sz = 4u << 20;
		unsigned char *big = malloc(sz);
		CHECK(big != NULL, "malloc 4 MiB");
		if (big) {
			memset(big, 'A', sz);
			pid = xfork();
			if (pid == 0) {
				memset(big, 'B', sz);
				for (size_t i = 0; i < sz; i += 4096)
					if (big[i] != 'B')
						_exit(1);
				_exit(0);
			}
			st = 0;
			waitpid(pid, &st, 0);
			CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child wrote 4 MiB buffer");
			int same = 1;
			for (size_t i = 0; i < sz; i++)
				same &= big[i] == 'A';
			CHECK(same, "parent 4 MiB buffer unchanged");
			/* Parent writes after fork do not leak into a child either. */
			pid = xfork();
			if (pid == 0) {
				msleep(30);
				_exit(big[12345] == 'A' ? 0 : 1);
			}
			big[12345] = 'P';
			st = 0;
			waitpid(pid, &st, 0);
			CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child does not see parent write after fork");
			free(big);
		}
	}

	/* vfork + _exit. */
	pid = vfork();
	if (pid == 0)
		_exit(4);
	CHECK(pid > 0, "vfork");
	st = 0;
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 4, "vfork child exit 4");

	/* vfork + execve. */
	fflush(stdout);
	pid = vfork();
	if (pid == 0) {
		char *argv[] = { BUSYBOX, "false", NULL };
		char *envp[] = { NULL };
		execve(argv[0], argv, envp);
		_exit(127);
	}
	st = 0;
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 1, "vfork+execve busybox false exit 1");

	/* execve from a forked child. */
	{
		char *t[] = { BUSYBOX, "true", NULL };
		st = run_exec(t);
		printf("execve busybox true: %s\n", status_str(st, buf, sizeof buf));
		char *f[] = { BUSYBOX, "sh", "-c", "exit 42", NULL };
		st = run_exec(f);
		printf("execve busybox sh exit 42: %s\n", status_str(st, buf, sizeof buf));
		char *k[] = { BUSYBOX, "sh", "-c", "kill -TERM $$", NULL };
		st = run_exec(k);
		printf("execve busybox sh kill self: %s\n", status_str(st, buf, sizeof buf));
	}

	/* execve of a missing path fails in the calling process. */
	{
		char *argv[] = { "/no/such/program", NULL };
		char *envp[] = { NULL };
		errno = 0;
		CHECK(execve(argv[0], argv, envp) == -1 && errno == ENOENT, "execve missing path ENOENT");
	}

	/* Close-on-exec: the O_CLOEXEC fd is gone in the exec'd program, the plain one is not. */
	if (cloexec_fd >= 0 && cloexec_fd < 10 && plain_fd >= 0 && plain_fd < 10) {
		char cmd[64];
		snprintf(cmd, sizeof cmd, "echo x >&%d", cloexec_fd);
		char *a1[] = { BUSYBOX, "sh", "-c", cmd, NULL };
		st = run_exec(a1);
		printf("write to O_CLOEXEC fd after exec: %s\n",
		       WIFEXITED(st) && WEXITSTATUS(st) != 0 && WEXITSTATUS(st) != 127 ? "failed"
		       : WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "ok" : "other");
		char cmd2[64];
		snprintf(cmd2, sizeof cmd2, "echo x >&%d", plain_fd);
		char *a2[] = { BUSYBOX, "sh", "-c", cmd2, NULL };
		st = run_exec(a2);
		printf("write to plain fd after exec: %s\n",
		       WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "ok" : "failed");
		int fl = fcntl(cloexec_fd, F_GETFD);
		CHECK(fl >= 0 && (fl & FD_CLOEXEC), "O_CLOEXEC sets FD_CLOEXEC");
		fl = fcntl(plain_fd, F_GETFD);
		CHECK(fl == 0, "plain open has no FD_CLOEXEC");
	}

	/* Exit status of the process itself comes from main's return. */
	if (failures) {
		printf("%d failures\n", failures);
		return 1;
	}
	printf("all ok\n");
	return 0;
}
