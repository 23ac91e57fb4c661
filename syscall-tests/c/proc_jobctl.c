/* Checks job control: SIGSTOP/SIGTSTP stop a process (all its threads), wait4 WUNTRACED and
 * WCONTINUED, waitid WSTOPPED/WCONTINUED/WNOWAIT, SIGCHLD with CLD_STOPPED/CLD_CONTINUED and
 * SA_NOCLDSTOP, signals held while stopped, SIGKILL of a stopped process, SIGCONT discarding
 * pending stop signals, /proc/PID/status State. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int failures;

#define CHECK(cond, what)                                          \
	do {                                                       \
		if (cond) {                                        \
			printf("%s: ok\n", what);                  \
		} else {                                           \
			printf("%s: FAIL (errno %d)\n", what, errno); \
			failures++;                                \
		}                                                  \
	} while (0)

static volatile sig_atomic_t chld_code, chld_status, chld_count;

static void on_chld(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	chld_code = si->si_code;
	chld_status = si->si_status;
	chld_count++;
}

static void nap(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

static char state_of(pid_t pid)
{
	char path[64], buf[4096];
	snprintf(path, sizeof path, "/proc/%d/status", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return '?';
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	char *s = strstr(buf, "State:\t");
	return s ? s[7] : '?';
}

/* A child that waits for signals; its handler counts SIGUSR1. */
static volatile sig_atomic_t usr1;
static void on_usr1(int sig)
{
	(void)sig;
	usr1++;
}

static pid_t spawn_waiter(int *pipe_w)
{
	int p[2];
	if (pipe(p) != 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		signal(SIGUSR1, on_usr1);
		setpgid(0, 0);
		/* SIGUSR1 is taken only inside sigsuspend, so a signal held by a
		 * stop cannot be handled before the child waits for it. */
		sigset_t usr, none;
		sigemptyset(&usr);
		sigaddset(&usr, SIGUSR1);
		sigemptyset(&none);
		sigprocmask(SIG_BLOCK, &usr, NULL);
		/* Ready: the parent waits for this byte before signalling. */
		if (write(p[1], "r", 1) != 1)
			_exit(3);
		for (;;) {
			sigsuspend(&none);
			/* Report each handled SIGUSR1 to the parent. */
			char c = (char)usr1;
			if (write(p[1], &c, 1) != 1)
				_exit(3);
		}
	}
	close(p[1]);
	*pipe_w = p[0];
	char r;
	if (read(p[0], &r, 1) != 1)
		return -1;
	return pid;
}

/* Threads that count while running: a stop must freeze all of them. */
static volatile unsigned long *counters;
static void *spin(void *arg)
{
	long i = (long)arg;
	for (;;)
		counters[i]++;
	return NULL;
}

int main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_chld;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigaction(SIGCHLD, &sa, NULL);

	int rd;
	pid_t c = spawn_waiter(&rd);
	CHECK(c > 0, "fork a waiting child");

	/* SIGSTOP: wait4 WUNTRACED reports it once; SIGCHLD says CLD_STOPPED. */
	int st = 0;
	chld_count = 0;
	CHECK(kill(c, SIGSTOP) == 0, "kill SIGSTOP");
	CHECK(waitpid(c, &st, WUNTRACED) == c && WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP, "waitpid WUNTRACED: stopped by SIGSTOP");
	nap(20);
	CHECK(chld_count >= 1 && chld_code == CLD_STOPPED && chld_status == SIGSTOP, "SIGCHLD with CLD_STOPPED");
	CHECK(waitpid(c, &st, WUNTRACED | WNOHANG) == 0, "the stop is reported once");
	printf("state while stopped: %c\n", state_of(c));

	/* A signal sent while stopped waits for SIGCONT. */
	CHECK(kill(c, SIGUSR1) == 0, "SIGUSR1 to the stopped child");
	char b;
	int fl = 0;
	/* Nothing arrives on the pipe while it is stopped. */
	{
		fd_set set;
		FD_ZERO(&set);
		FD_SET(rd, &set);
		struct timeval tv = { 0, 100000 };
		fl = select(rd + 1, &set, NULL, NULL, &tv);
	}
	CHECK(fl == 0, "no handler runs while stopped");

	/* SIGCONT: WCONTINUED reports it, the held SIGUSR1 runs its handler. */
	chld_count = 0;
	CHECK(kill(c, SIGCONT) == 0, "kill SIGCONT");
	CHECK(waitpid(c, &st, WCONTINUED) == c && WIFCONTINUED(st), "waitpid WCONTINUED: continued");
	nap(20);
	CHECK(chld_count >= 1 && chld_code == CLD_CONTINUED && chld_status == SIGCONT, "SIGCHLD with CLD_CONTINUED");
	CHECK(read(rd, &b, 1) == 1 && b == 1, "the held SIGUSR1 is handled after SIGCONT");
	nap(20);
	printf("state after SIGCONT: %c\n", state_of(c));

	/* waitid: WSTOPPED with WNOWAIT leaves the report for the next wait. */
	siginfo_t si;
	CHECK(kill(c, SIGTSTP) == 0, "kill SIGTSTP (child in its own, non-orphaned group)");
	memset(&si, 0, sizeof si);
	CHECK(waitid(P_PID, c, &si, WSTOPPED | WNOWAIT) == 0 && si.si_code == CLD_STOPPED && si.si_status == SIGTSTP && si.si_pid == c, "waitid WSTOPPED|WNOWAIT");
	memset(&si, 0, sizeof si);
	CHECK(waitid(P_PID, c, &si, WSTOPPED | WNOHANG) == 0 && si.si_code == CLD_STOPPED && si.si_pid == c, "waitid WSTOPPED again");
	memset(&si, 0, sizeof si);
	CHECK(waitid(P_PID, c, &si, WSTOPPED | WNOHANG) == 0 && si.si_pid == 0, "then nothing");
	CHECK(waitid(P_PID, c, &si, WNOHANG) == -1 && errno == EINVAL, "waitid without WEXITED|WSTOPPED|WCONTINUED: EINVAL");

	/* SA_NOCLDSTOP: no SIGCHLD for continue (or stop), the wait still reports. */
	sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_NOCLDSTOP;
	sigaction(SIGCHLD, &sa, NULL);
	chld_count = 0;
	CHECK(kill(c, SIGCONT) == 0, "SIGCONT with SA_NOCLDSTOP");
	memset(&si, 0, sizeof si);
	CHECK(waitid(P_PID, c, &si, WCONTINUED) == 0 && si.si_code == CLD_CONTINUED && si.si_status == SIGCONT, "waitid WCONTINUED");
	CHECK(kill(c, SIGSTOP) == 0 && waitpid(c, &st, WUNTRACED) == c && WIFSTOPPED(st), "stopped again");
	nap(20);
	CHECK(chld_count == 0, "no SIGCHLD with SA_NOCLDSTOP");
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigaction(SIGCHLD, &sa, NULL);

	/* SIGKILL ends a stopped process. */
	CHECK(kill(c, SIGKILL) == 0, "SIGKILL to the stopped child");
	CHECK(waitpid(c, &st, 0) == c && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "killed while stopped");
	close(rd);

	/* A stop freezes every thread of a process. */
	counters = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pid_t m = fork();
	if (m == 0) {
		pthread_t th[2];
		for (long i = 0; i < 2; i++)
			pthread_create(&th[i], NULL, spin, (void *)i);
		for (;;)
			counters[2]++;
	}
	nap(100);
	CHECK(kill(m, SIGSTOP) == 0 && waitpid(m, &st, WUNTRACED) == m && WIFSTOPPED(st), "multi-threaded child stopped");
	unsigned long before[3] = { counters[0], counters[1], counters[2] };
	nap(150);
	CHECK(counters[0] == before[0] && counters[1] == before[1] && counters[2] == before[2], "no thread runs while stopped");
	CHECK(kill(m, SIGCONT) == 0, "SIGCONT");
	nap(100);
	CHECK(counters[2] != before[2] && (counters[0] != before[0] || counters[1] != before[1]), "threads run again");
	kill(m, SIGKILL);
	waitpid(m, &st, 0);

	/* SIGCONT discards a pending stop signal, and a stop signal a pending SIGCONT. */
	int qp[2];
	if (pipe(qp) != 0)
		return 2;
	pid_t q = fork();
	if (q == 0) {
		sigset_t all;
		sigfillset(&all);
		sigprocmask(SIG_BLOCK, &all, NULL);
		if (write(qp[1], "r", 1) != 1)
			_exit(9);
		nap(200);
		sigset_t p;
		sigpending(&p);
		_exit((sigismember(&p, SIGTSTP) ? 1 : 0) | (sigismember(&p, SIGCONT) ? 2 : 0) | (sigismember(&p, SIGUSR2) ? 4 : 0));
	}
	char qr;
	if (read(qp[0], &qr, 1) != 1)
		return 2;
	kill(q, SIGTSTP);
	kill(q, SIGUSR2);
	kill(q, SIGCONT);
	CHECK(waitpid(q, &st, 0) == q && WIFEXITED(st), "child with everything blocked exits");
	printf("pending after TSTP,USR2,CONT: tstp %d cont %d usr2 %d\n", WEXITSTATUS(st) & 1, !!(WEXITSTATUS(st) & 2), !!(WEXITSTATUS(st) & 4));

	printf(failures ? "%d failures\n" : "all ok\n", failures);
	return failures ? 1 : 0;
}
