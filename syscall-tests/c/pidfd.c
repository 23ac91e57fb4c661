/* Checks pidfds: pidfd_open (flags, close-on-exec, errors), poll readiness when the process exits, pidfd_send_signal (plain and with a siginfo, errors), waitid(P_PIDFD) status and PIDFD_NONBLOCK. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#ifndef PIDFD_NONBLOCK
#define PIDFD_NONBLOCK O_NONBLOCK
#endif

static int failures;

static const char *errname(int e)
{
	switch (e) {
	case 0: return "0";
	case EAGAIN: return "EAGAIN";
	case EBADF: return "EBADF";
	case ECHILD: return "ECHILD";
	case EINVAL: return "EINVAL";
	case ENOENT: return "ENOENT";
	case EPERM: return "EPERM";
	case ESRCH: return "ESRCH";
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

static int pidfd_open(pid_t pid, unsigned flags)
{
	return syscall(SYS_pidfd_open, pid, flags);
}

static int pidfd_send_signal(int fd, int sig, siginfo_t *info, unsigned flags)
{
	return syscall(SYS_pidfd_send_signal, fd, sig, info, flags);
}

static pid_t xfork(void)
{
	fflush(stdout);
	return fork();
}

/* A child that exits with `code` once a byte arrives on the returned pipe. */
static pid_t gated_child(int code, int *gate)
{
	int p[2];
	char c;
	if (pipe(p) != 0)
		return -1;
	pid_t pid = xfork();
	if (pid == 0) {
		close(p[1]);
		if (read(p[0], &c, 1) < 0)
			_exit(99);
		_exit(code);
	}
	close(p[0]);
	*gate = p[1];
	return pid;
}

static void exit_and_poll(void)
{
	int gate, fd, r;
	siginfo_t si;
	struct pollfd pfd;
	pid_t pid = gated_child(7, &gate);
	fd = pidfd_open(pid, 0);
	CHECK(fd >= 0, "pidfd_open child");
	printf("close-on-exec: %s\n", (fcntl(fd, F_GETFD) & FD_CLOEXEC) ? "yes" : "no");
	printf("nonblocking: %s\n", (fcntl(fd, F_GETFL) & O_NONBLOCK) ? "yes" : "no");
	pfd.fd = fd;
	pfd.events = POLLIN;
	r = poll(&pfd, 1, 0);
	printf("poll while running: %d revents %#x\n", r, pfd.revents);
	CHECK(write(gate, "x", 1) == 1, "let the child exit");
	r = poll(&pfd, 1, 5000);
	printf("poll after exit: %d POLLIN %s\n", r, (pfd.revents & POLLIN) ? "yes" : "no");
	memset(&si, 0, sizeof(si));
	CHECK(waitid(P_PIDFD, fd, &si, WEXITED) == 0, "waitid P_PIDFD");
	printf("waitid: pid matches %s, code %s, status %d\n", si.si_pid == pid ? "yes" : "no", si.si_code == CLD_EXITED ? "CLD_EXITED" : "other", si.si_status);
	r = poll(&pfd, 1, 0);
	printf("poll after reap: %d POLLIN %s\n", r, (pfd.revents & POLLIN) ? "yes" : "no");
	errno = 0;
	CHECK(pidfd_send_signal(fd, SIGTERM, NULL, 0) == -1 && errno == ESRCH, "send to reaped ESRCH");
	errno = 0;
	CHECK(waitid(P_PIDFD, fd, &si, WEXITED) == -1 && errno == ECHILD, "waitid reaped ECHILD");
	close(fd);
	close(gate);
}

static void kill_sleeper(void)
{
	int fd;
	siginfo_t si;
	pid_t pid = xfork();
	if (pid == 0) {
		for (;;)
			pause();
	}
	fd = pidfd_open(pid, 0);
	CHECK(fd >= 0, "pidfd_open sleeper");
	CHECK(pidfd_send_signal(fd, 0, NULL, 0) == 0, "signal 0 probes");
	CHECK(pidfd_send_signal(fd, SIGTERM, NULL, 0) == 0, "send SIGTERM");
	memset(&si, 0, sizeof(si));
	CHECK(waitid(P_PIDFD, fd, &si, WEXITED) == 0, "waitid killed");
	printf("killed: code %s, status %s\n", si.si_code == CLD_KILLED ? "CLD_KILLED" : "other", si.si_status == SIGTERM ? "SIGTERM" : "other");
	close(fd);
}

static void with_siginfo(void)
{
	int fd, st = 0;
	siginfo_t si;
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGUSR1);
	sigprocmask(SIG_BLOCK, &s, NULL);
	pid_t pid = xfork();
	if (pid == 0) {
		siginfo_t got;
		if (sigwaitinfo(&s, &got) != SIGUSR1)
			_exit(4);
		_exit(got.si_code == SI_QUEUE && got.si_value.sival_int == 99 ? 3 : 5);
	}
	fd = pidfd_open(pid, 0);
	memset(&si, 0, sizeof(si));
	si.si_signo = SIGUSR2;
	si.si_code = SI_QUEUE;
	si.si_value.sival_int = 99;
	errno = 0;
	CHECK(pidfd_send_signal(fd, SIGUSR1, &si, 0) == -1 && errno == EINVAL, "siginfo with another signo EINVAL");
	si.si_signo = SIGUSR1;
	si.si_code = SI_USER;
	errno = 0;
	CHECK(pidfd_send_signal(fd, SIGUSR1, &si, 0) == -1 && errno == EPERM, "SI_USER siginfo to another process EPERM");
	si.si_code = SI_QUEUE;
	CHECK(pidfd_send_signal(fd, SIGUSR1, &si, 0) == 0, "send with SI_QUEUE siginfo");
	waitpid(pid, &st, 0);
	printf("child saw SI_QUEUE and value 99: %s\n", WIFEXITED(st) && WEXITSTATUS(st) == 3 ? "yes" : "no");
	sigprocmask(SIG_UNBLOCK, &s, NULL);
	close(fd);
}

static void nonblocking(void)
{
	int gate, fd;
	siginfo_t si;
	pid_t pid = gated_child(0, &gate);
	fd = pidfd_open(pid, PIDFD_NONBLOCK);
	CHECK(fd >= 0, "pidfd_open PIDFD_NONBLOCK");
	printf("nonblocking: %s\n", (fcntl(fd, F_GETFL) & O_NONBLOCK) ? "yes" : "no");
	errno = 0;
	CHECK(waitid(P_PIDFD, fd, &si, WEXITED) == -1 && errno == EAGAIN, "waitid running child EAGAIN");
	memset(&si, 0, sizeof(si));
	CHECK(waitid(P_PIDFD, fd, &si, WEXITED | WNOHANG) == 0, "waitid WNOHANG running");
	printf("WNOHANG pid: %d\n", si.si_pid);
	CHECK(write(gate, "x", 1) == 1, "let the child exit");
	struct pollfd pfd = { fd, POLLIN, 0 };
	poll(&pfd, 1, 5000);
	memset(&si, 0, sizeof(si));
	CHECK(waitid(P_PIDFD, fd, &si, WEXITED) == 0, "waitid exited child");
	printf("reaped pid matches: %s\n", si.si_pid == pid ? "yes" : "no");
	close(fd);
	close(gate);
}

static pid_t thread_tid;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static void *thread_block(void *arg)
{
	(void)arg;
	thread_tid = gettid();
	pthread_mutex_lock(&mu);
	pthread_mutex_unlock(&mu);
	return NULL;
}

static void errors(void)
{
	int fd, p[2];
	siginfo_t si;
	pthread_t th;
	errno = 0;
	CHECK(pidfd_open(getpid(), 1) == -1 && errno == EINVAL, "bad flags EINVAL");
	errno = 0;
	CHECK(pidfd_open(-1, 0) == -1 && errno == EINVAL, "pid -1 EINVAL");
	errno = 0;
	CHECK(pidfd_open(0, 0) == -1 && errno == EINVAL, "pid 0 EINVAL");
	pid_t gone = xfork();
	if (gone == 0)
		_exit(0);
	waitpid(gone, NULL, 0);
	errno = 0;
	CHECK(pidfd_open(gone, 0) == -1 && errno == ESRCH, "reaped pid ESRCH");
	fd = pidfd_open(getpid(), 0);
	CHECK(fd >= 0, "pidfd_open self");
	errno = 0;
	CHECK(pidfd_send_signal(fd, SIGUSR1, NULL, 0x100) == -1 && errno == EINVAL, "send bad flags EINVAL");
	errno = 0;
	CHECK(pidfd_send_signal(fd, 100, NULL, 0) == -1 && errno == EINVAL, "send signal 100 EINVAL");
	errno = 0;
	CHECK(waitid(P_PIDFD, fd, &si, WEXITED | WNOHANG) == -1 && errno == ECHILD, "waitid on self ECHILD");
	CHECK(pipe(p) == 0, "pipe");
	errno = 0;
	CHECK(pidfd_send_signal(p[0], SIGUSR1, NULL, 0) == -1 && errno == EBADF, "send via a pipe EBADF");
	errno = 0;
	CHECK(waitid(P_PIDFD, p[0], &si, WEXITED) == -1 && errno == EBADF, "waitid via a pipe EBADF");
	errno = 0;
	CHECK(pidfd_send_signal(999, SIGUSR1, NULL, 0) == -1 && errno == EBADF, "send via a closed fd EBADF");
	errno = 0;
	CHECK(waitid(P_PIDFD, -1, &si, WEXITED) == -1 && errno == EINVAL, "waitid P_PIDFD -1 EINVAL");
	pthread_mutex_lock(&mu);
	pthread_create(&th, NULL, thread_block, NULL);
	while (__atomic_load_n(&thread_tid, __ATOMIC_SEQ_CST) == 0)
		usleep(1000);
	errno = 0;
	CHECK(pidfd_open(thread_tid, 0) == -1 && errno == ENOENT, "non-leader thread ENOENT");
	pthread_mutex_unlock(&mu);
	pthread_join(th, NULL);
	close(fd);
	close(p[0]);
	close(p[1]);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	exit_and_poll();
	kill_sleeper();
	with_siginfo();
	nonblocking();
	errors();
	printf("failures: %d\n", failures);
	return failures != 0;
}
