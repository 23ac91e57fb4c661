/* Checks siginfo contents (si_code for kill/raise/sigqueue, si_pid/si_uid, SEGV_MAPERR, SIGCHLD fields), queued real-time signals, SS_ONSTACK inside a handler. */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static int failures;

static const char *errname(int e)
{
	switch (e) {
	case 0: return "0";
	case EINTR: return "EINTR";
	case EINVAL: return "EINVAL";
	case EAGAIN: return "EAGAIN";
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

static pid_t xfork(void)
{
	fflush(stdout);
	return fork();
}

static const char *code_name(int c)
{
	switch (c) {
	case SI_USER: return "SI_USER";
	case SI_TKILL: return "SI_TKILL";
	case SI_QUEUE: return "SI_QUEUE";
	case SI_KERNEL: return "SI_KERNEL";
	default: return "other";
	}
}

static int set_action(int sig, void (*h)(int, siginfo_t *, void *), int flags)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = h;
	sa.sa_flags = flags | SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	return sigaction(sig, &sa, NULL);
}

static volatile sig_atomic_t hits;
static volatile int info_signo, info_code, info_pid, info_uid, info_val, info_status;
static volatile int rt_vals[8];
static void on_info(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	info_signo = si->si_signo;
	info_code = si->si_code;
	info_pid = si->si_pid;
	info_uid = (int)si->si_uid;
	info_val = si->si_value.sival_int;
	info_status = si->si_status;
	if (hits < 8)
		rt_vals[hits] = si->si_value.sival_int;
	hits++;
}

static sigjmp_buf segv_env;
static void *volatile segv_addr;
static volatile int segv_code;
static void on_segv(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	segv_addr = si->si_addr;
	segv_code = si->si_code;
	siglongjmp(segv_env, 1);
}

static volatile int alt_flag_onstack;
static void on_alt(int sig)
{
	(void)sig;
	stack_t cur;
	if (sigaltstack(NULL, &cur) == 0)
		alt_flag_onstack = (cur.ss_flags & SS_ONSTACK) != 0;
}

static void reset(void)
{
	hits = 0;
	info_signo = info_pid = info_uid = info_val = info_status = -1;
	info_code = 0x7fff; /* not a valid si_code (note SI_QUEUE is -1) */
	rt_vals[0] = rt_vals[1] = rt_vals[2] = 0;
}

int main(void)
{
	sigset_t set, old;
	sigemptyset(&set);
	sigprocmask(SIG_SETMASK, &set, NULL);
	CHECK(set_action(SIGUSR1, on_info, 0) == 0, "sigaction SA_SIGINFO");

	/* kill(getpid()): SI_USER with the sender's pid and uid. */
	reset();
	kill(getpid(), SIGUSR1);
	CHECK(hits == 1 && info_signo == SIGUSR1, "kill delivered");
	printf("kill: si_code %s\n", code_name(info_code));
	printf("kill: si_pid %s\n", info_pid == getpid() ? "same as getpid" : "different");
	printf("kill: si_uid %s\n", info_uid == (int)getuid() ? "same as getuid" : "different");

	/* raise() is tgkill: SI_TKILL. */
	reset();
	raise(SIGUSR1);
	CHECK(hits == 1 && info_signo == SIGUSR1, "raise delivered");
	printf("raise: si_code %s\n", code_name(info_code));
	printf("raise: si_pid %s\n", info_pid == getpid() ? "same as getpid" : "different");

	/* sigqueue: SI_QUEUE with the value. */
	reset();
	{
		union sigval v;
		v.sival_int = 1234;
		errno = 0;
		CHECK(sigqueue(getpid(), SIGUSR1, v) == 0, "sigqueue");
	}
	printf("sigqueue: si_code %s, si_value %d\n", code_name(info_code), info_val);

	/* A signal from a child carries the child's pid. */
	reset();
	{
		pid_t pid = xfork();
		if (pid == 0) {
			kill(getppid(), SIGUSR1);
			_exit(0);
		}
		sigset_t empty;
		sigemptyset(&empty);
		sigemptyset(&set);
		sigaddset(&set, SIGUSR1);
		sigprocmask(SIG_BLOCK, &set, &old);
		while (hits == 0)
			sigsuspend(&empty);
		sigprocmask(SIG_SETMASK, &old, NULL);
		waitpid(pid, NULL, 0);
		printf("signal from child: si_code %s, si_pid %s\n", code_name(info_code),
		       info_pid == pid ? "child" : "other");
	}

	/* Real-time signals queue, in order, with their values. */
	CHECK(set_action(SIGRTMIN, on_info, 0) == 0, "sigaction SIGRTMIN");
	reset();
	sigemptyset(&set);
	sigaddset(&set, SIGRTMIN);
	sigprocmask(SIG_BLOCK, &set, &old);
	for (int i = 0; i < 3; i++) {
		union sigval v;
		v.sival_int = 10 + i;
		sigqueue(getpid(), SIGRTMIN, v);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	printf("three queued SIGRTMIN: delivered %d times, values %d %d %d\n", (int)hits,
	       rt_vals[0], rt_vals[1], rt_vals[2]);

	/* SIGSEGV on a null write: SEGV_MAPERR, si_addr 0. */
	CHECK(set_action(SIGSEGV, on_segv, 0) == 0, "sigaction SIGSEGV");
	segv_addr = (void *)1;
	segv_code = -1;
	if (sigsetjmp(segv_env, 1) == 0) {
		*(volatile int *)0 = 1;
		printf("null write did not fault\n");
	}
	CHECK(segv_addr == NULL, "sigsegv si_addr is null");
	printf("sigsegv: si_code %s\n", segv_code == SEGV_MAPERR ? "SEGV_MAPERR" : segv_code == SEGV_ACCERR ? "SEGV_ACCERR" : "other");
	signal(SIGSEGV, SIG_DFL);

	/* SIGCHLD: CLD_EXITED / CLD_KILLED with status and pid. */
	CHECK(set_action(SIGCHLD, on_info, 0) == 0, "sigaction SIGCHLD");
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, &old);
	for (int round = 0; round < 2; round++) {
		reset();
		pid_t pid = xfork();
		if (pid == 0) {
			if (round == 0)
				_exit(9);
			for (;;)
				pause();
		}
		if (round == 1)
			kill(pid, SIGKILL);
		sigset_t empty;
		sigemptyset(&empty);
		while (hits == 0)
			sigsuspend(&empty);
		printf("sigchld %d: si_code %s, si_status %d, si_pid %s\n", round,
		       info_code == CLD_EXITED ? "CLD_EXITED" : info_code == CLD_KILLED ? "CLD_KILLED" : "other",
		       info_status, info_pid == pid ? "child" : "other");
		waitpid(pid, NULL, 0);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	signal(SIGCHLD, SIG_DFL);

	/* sigaltstack reports SS_ONSTACK while running on it. */
	{
		stack_t ss;
		memset(&ss, 0, sizeof ss);
		ss.ss_sp = malloc(64 * 1024);
		ss.ss_size = 64 * 1024;
		CHECK(sigaltstack(&ss, NULL) == 0, "sigaltstack");
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_alt;
		sa.sa_flags = SA_ONSTACK;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGUSR2, &sa, NULL);
		raise(SIGUSR2);
		CHECK(alt_flag_onstack, "SS_ONSTACK reported inside handler");
		stack_t cur;
		sigaltstack(NULL, &cur);
		CHECK(!(cur.ss_flags & SS_ONSTACK), "SS_ONSTACK clear after handler");
	}

	if (failures) {
		printf("%d failures\n", failures);
		return 1;
	}
	printf("all ok\n");
	return 0;
}
