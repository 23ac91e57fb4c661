/* Random syscalls with hostile arguments, in a forked child per batch, to
 * check that the sandbox's kernel survives bad input: every call must
 * return (an error is fine) and the sandbox must not crash or hang.
 * Usage: sysfuzz SEED ROUNDS. Prints "survived" at the end. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static uint64_t s;
static uint64_t rnd(void) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return s; }

/* Syscalls that would end or stall the fuzzer itself, or harm the run. */
static int skip(long nr) {
	switch (nr) {
	case SYS_exit: case SYS_exit_group: case SYS_kill: case SYS_tkill: case SYS_tgkill:
	case SYS_pause: case SYS_rt_sigsuspend: case SYS_vfork: case SYS_fork: case SYS_clone:
	case SYS_clone3: case SYS_execve: case SYS_execveat: case SYS_rt_sigreturn:
	case SYS_nanosleep: case SYS_clock_nanosleep: case SYS_wait4: case SYS_waitid:
	case SYS_futex: case SYS_rt_sigtimedwait: case SYS_select: case SYS_pselect6:
	case SYS_poll: case SYS_ppoll: case SYS_epoll_wait: case SYS_epoll_pwait: case SYS_epoll_pwait2:
	case SYS_read: case SYS_readv: case SYS_recvfrom: case SYS_recvmsg: case SYS_accept:
	case SYS_accept4: case SYS_flock: case SYS_fcntl: case SYS_munmap: case SYS_mremap:
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

static long arg(void) {
	static char buf[4096];
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

int main(int argc, char **argv) {
	s = argc > 1 ? strtoull(argv[1], 0, 0) : 1;
	long rounds = argc > 2 ? atol(argv[2]) : 2000;
	if (!s) s = 1;
	for (int batch = 0; batch < 8; batch++) {
		pid_t c = fork();
		if (c == 0) {
			alarm(20);
			for (long i = 0; i < rounds; i++) {
				long nr = (long)(rnd() % 460);
				if (skip(nr)) continue;
				syscall(nr, arg(), arg(), arg(), arg(), arg(), arg());
			}
			_exit(0);
		}
		int st;
		waitpid(c, &st, 0);
		rnd(); rnd();
	}
	printf("survived\n");
	return 0;
}
