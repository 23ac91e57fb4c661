/* Random syscalls with hostile arguments, in a forked child per batch, to
 * check that the sandbox's kernel survives bad input: every call must
 * return (an error is fine) and the sandbox must not crash or hang.
 *
 * Calls that block (a read of an empty pipe, msgrcv, futex waits, pause,
 * accept, ...) are made too: a periodic SIGALRM, caught by a handler
 * installed without SA_RESTART, interrupts them within milliseconds, as
 * Linux does. A call that no signal can end is a bug of the sandbox's
 * kernel; the parent notices a child that makes no progress, names the
 * call, kills the child and fails.
 *
 * Usage: sysfuzz SEED ROUNDS [BATCHES]. Prints "survived" at the end and
 * a summary on stderr. Run it only inside a sandbox. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static uint64_t s;
static uint64_t rnd(void) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return s; }

/* splitmix64: a well-spread start for each batch from (seed, batch). */
static uint64_t mix(uint64_t x) {
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* Syscalls that would end the fuzzer, take away the signal that interrupts
 * blocked calls, or harm the run (its files, its stdout, its parent).
 * Calls that merely block are not here: the timer interrupts them. */
static int skip(long nr) {
	switch (nr) {
	case SYS_exit: case SYS_exit_group: case SYS_kill: case SYS_tkill: case SYS_tgkill:
	case SYS_vfork: case SYS_fork: case SYS_clone:
	case SYS_clone3: case SYS_execve: case SYS_execveat: case SYS_rt_sigreturn:
	case SYS_fcntl: case SYS_munmap: case SYS_mremap:
	case SYS_mprotect: case SYS_madvise: case SYS_brk: case SYS_arch_prctl: case SYS_rt_sigaction:
	case SYS_rt_sigprocmask: case SYS_sigaltstack: case SYS_setitimer: case SYS_alarm:
	case SYS_timer_create: case SYS_timer_settime: case SYS_prctl: case SYS_seccomp:
	case SYS_rseq: case SYS_set_tid_address: case SYS_dup2: case SYS_dup3: case SYS_close:
	case SYS_close_range: case SYS_setsid: case SYS_setpgid: case SYS_chdir: case SYS_fchdir:
	case SYS_chroot: case SYS_pivot_root: case SYS_mount: case SYS_umount2: case SYS_reboot:
	case SYS_ptrace: case SYS_personality: case SYS_setrlimit: case SYS_prlimit64:
	case SYS_write: case SYS_writev: case SYS_pwrite64: case SYS_pwritev: case SYS_sendfile:
	case SYS_unlink: case SYS_unlinkat: case SYS_rmdir: case SYS_rename: case SYS_renameat:
	case SYS_renameat2: case SYS_truncate: case SYS_ftruncate: case SYS_sched_setaffinity:
		return 1;
	}
	return 0;
}

/* Calls that Linux itself may leave blocked despite a caught SIGALRM: they
 * install a signal mask of the caller's choosing (which may block SIGALRM),
 * or, for PI futexes, restart after the handler. A stuck child in one of
 * these is not the sandbox's fault. */
static int may_ignore_signals(long nr, long a1) {
	switch (nr) {
	case SYS_rt_sigsuspend: case SYS_ppoll: case SYS_pselect6: case SYS_epoll_pwait:
	case SYS_epoll_pwait2: case SYS_io_pgetevents:
		return 1;
	case SYS_futex:
		switch (a1 & 127) {
		case 6: case 11: case 13: /* FUTEX_LOCK_PI, _WAIT_REQUEUE_PI, _LOCK_PI2 */
			return 1;
		}
	}
	return 0;
}

static char buf[4096];

static long arg(void) {
	switch (rnd() % 8) {
	case 0: return 0;
	case 1: return -1;
	case 2: return (long)(rnd() % 4096);
	case 3: return (long)rnd();
	case 4: return (long)buf + (long)(rnd() % 4000);       /* a valid buffer */
	case 5: return (long)0xffff888000000000ULL + (long)(rnd() % 0x100000); /* the sentry's map */
	case 6: return (long)(rnd() % 64);                      /* small fds, flags */
	default: return (long)0x7ffffffff000LL;                 /* the top page */
	}
}

/* What a batch's child is doing, shared with the parent. */
struct progress {
	volatile long calls, interrupted, nr, a[6];
};

static void on_alarm(int sig) { (void)sig; }

static void child(struct progress *p, long rounds) {
	struct sigaction sa = {0};
	sa.sa_handler = on_alarm; /* no SA_RESTART: a blocked call returns EINTR */
	sigaction(SIGALRM, &sa, 0);
	/* Periodic, so a tick that lands just before a call blocks is followed
	 * by another one. */
	struct itimerval it = {{0, 2000}, {0, 2000}};
	setitimer(ITIMER_REAL, &it, 0);
	for (long i = 0; i < rounds; i++) {
		long nr = (long)(rnd() % 470);
		if (rnd() % 64 == 0)
			nr = (long)rnd(); /* out of range, or with high bits set */
		if (skip(nr)) continue;
		for (int k = 0; k < 6; k++)
			p->a[k] = arg();
		p->nr = nr;
		long r = syscall(nr, p->a[0], p->a[1], p->a[2], p->a[3], p->a[4], p->a[5]);
		if (r == -1 && errno == EINTR)
			p->interrupted++;
		p->calls++;
	}
	_exit(0);
}

static void on_watchdog(int sig) { (void)sig; }

int main(int argc, char **argv) {
	uint64_t seed = argc > 1 ? strtoull(argv[1], 0, 0) : 1;
	long rounds = argc > 2 ? atol(argv[2]) : 2000;
	int batches = argc > 3 ? atoi(argv[3]) : 8;
	struct progress *p = mmap(0, sizeof *p, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) { perror("mmap"); return 2; }
	struct sigaction sa = {0};
	sa.sa_handler = on_watchdog; /* no SA_RESTART: it interrupts waitpid */
	sigaction(SIGALRM, &sa, 0);
	long calls = 0, interrupted = 0, signalled = 0, tolerated = 0, stuck = 0;
	for (int batch = 0; batch < batches; batch++) {
		*p = (struct progress){0};
		s = mix(seed * 1000003 + (uint64_t)batch);
		if (!s) s = 1;
		pid_t c = fork();
		if (c < 0) { perror("fork"); return 2; }
		if (c == 0)
			child(p, rounds);
		/* Every second, check that the child got on; 5 s without a single
		 * call returning (with a signal every 2 ms) means one cannot be
		 * interrupted. */
		int st, idle = 0;
		long seen = -1;
		for (;;) {
			alarm(1);
			pid_t w = waitpid(c, &st, WUNTRACED);
			alarm(0);
			if (w == c && WIFSTOPPED(st)) {
				/* It stopped itself (rt_sigqueueinfo of SIGSTOP, say). */
				kill(c, SIGKILL);
				continue;
			}
			if (w == c)
				break;
			if (errno != EINTR) { perror("waitpid"); return 2; }
			if (p->calls != seen) {
				seen = p->calls;
				idle = 0;
				continue;
			}
			if (++idle < 5)
				continue;
			long nr = p->nr;
			int ok = may_ignore_signals(nr, p->a[1]);
			fprintf(stderr, "sysfuzz: seed %llu batch %d: %s in syscall %ld(%#lx, %#lx, %#lx, %#lx, %#lx, %#lx)\n",
				(unsigned long long)seed, batch, ok ? "blocked (signals may be masked)" : "STUCK, no signal ends it",
				nr, p->a[0], p->a[1], p->a[2], p->a[3], p->a[4], p->a[5]);
			if (ok) tolerated++; else stuck++;
			kill(c, SIGKILL);
			/* If SIGKILL cannot end it either, this waits forever: the
			 * test's own deadline reports the hang. */
			while (waitpid(c, &st, 0) != c) {}
			break;
		}
		if (WIFSIGNALED(st) && WTERMSIG(st) != SIGKILL)
			signalled++; /* random calls may well crash their own process */
		calls += p->calls;
		interrupted += p->interrupted;
	}
	fprintf(stderr, "sysfuzz: seed %llu: %d batches, %ld calls, %ld interrupted, %ld batches ended by a signal, %ld blocked with signals masked\n",
		(unsigned long long)seed, batches, calls, interrupted, signalled, tolerated);
	if (stuck)
		return 1;
	printf("survived\n");
	return 0;
}
