/* Seccomp filters installed by the program itself (seccomp(2) and
 * prctl(PR_SET_SECCOMP)): each case runs in a forked child, installs
 * classic BPF filters and reports what the filtered calls return, how
 * the child ended and what a SIGSYS handler saw. Prints no pids or
 * addresses (only comparisons of them), so native and sandboxed output
 * compare. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#define ARG_LO(i) (offsetof(struct seccomp_data, args) + 8 * (i))
#define ARG_HI(i) (ARG_LO(i) + 4)

static const char *ename(int e)
{
	switch (e) {
	case 0: return "ok";
	case EPERM: return "EPERM";
	case EACCES: return "EACCES";
	case EINVAL: return "EINVAL";
	case EFAULT: return "EFAULT";
	case ENOSYS: return "ENOSYS";
	case EDOM: return "EDOM";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case 4095: return "4095";
	default: return "other";
	}
}

static long sc(unsigned op, unsigned flags, void *args)
{
	return syscall(SYS_seccomp, op, flags, args);
}

/* A filter: on x86-64, syscall `nr` gets `action`, everything else
 * is allowed. */
static long filter_one(int nr, unsigned action, unsigned flags)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, action),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog p = { sizeof f / sizeof f[0], f };
	return sc(SECCOMP_SET_MODE_FILTER, flags, &p);
}

static void report(const char *what, long r)
{
	printf("%s: %ld %s\n", what, r < 0 ? -1L : r, ename(r < 0 ? errno : 0));
	/* The child may be killed next. */
	fflush(stdout);
}

static void status_line(const char *key)
{
	char line[256];
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return;
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, key, strlen(key)) && line[strlen(key)] == ':')
			printf("  %s", line);
	fclose(f);
}

static void wait_report(pid_t pid)
{
	int st;
	if (waitpid(pid, &st, 0) != pid) {
		printf("  waitpid failed\n");
		return;
	}
	if (WIFEXITED(st))
		printf("  exit %d\n", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		printf("  killed by %s\n", WTERMSIG(st) == SIGSYS ? "SIGSYS" : WTERMSIG(st) == SIGKILL ? "SIGKILL" : "other");
}

#define CASE(name) \
	for (int once_ = (printf("%s\n", name), fflush(stdout), 1); once_; once_ = 0) \
		for (pid_t pid_ = fork(); pid_ >= 0 && once_; once_ = 0, pid_ ? wait_report(pid_) : exit(0)) \
			if (pid_ == 0)

static void nnp(void)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) {
		perror("no_new_privs");
		exit(2);
	}
}

static volatile int trap_info[8];

static void on_sigsys(int sig, siginfo_t *si, void *uc_)
{
	ucontext_t *uc = uc_;
	trap_info[0] = sig;
	trap_info[1] = si->si_code;
	trap_info[2] = si->si_errno;
	trap_info[3] = si->si_syscall;
	trap_info[4] = si->si_arch == AUDIT_ARCH_X86_64;
	trap_info[5] = (greg_t)si->si_call_addr == uc->uc_mcontext.gregs[REG_RIP];
	trap_info[6] = uc->uc_mcontext.gregs[REG_RAX];
	trap_info[7] = 1;
}

static pthread_barrier_t tsync_barrier;
static int tsync_errno;

/* Waits while the main thread installs a filter, then calls getpid. */
static void *tsync_thread(void *arg)
{
	(void)arg;
	pthread_barrier_wait(&tsync_barrier);
	pthread_barrier_wait(&tsync_barrier);
	tsync_errno = syscall(SYS_getpid) < 0 ? errno : 0;
	return NULL;
}

int main(void)
{
	printf("PR_GET_SECCOMP: %d\n", prctl(PR_GET_SECCOMP));
	unsigned acts[] = { SECCOMP_RET_KILL_PROCESS, SECCOMP_RET_KILL_THREAD, SECCOMP_RET_TRAP, SECCOMP_RET_ERRNO,
			    SECCOMP_RET_TRACE, SECCOMP_RET_LOG, SECCOMP_RET_ALLOW, 0x12340000 };
	for (unsigned i = 0; i < sizeof acts / sizeof acts[0]; i++) {
		char what[64];
		snprintf(what, sizeof what, "action avail %#x", acts[i]);
		report(what, sc(SECCOMP_GET_ACTION_AVAIL, 0, &acts[i]));
	}
	report("action avail with flags", sc(SECCOMP_GET_ACTION_AVAIL, 1, &acts[0]));
	report("unknown op", sc(99, 0, NULL));

	CASE("without no_new_privs, not root") {
		if (setuid(1000))
			exit(3);
		report("  filter", filter_one(SYS_getpid, SECCOMP_RET_ERRNO | EPERM, 0));
		report("  prctl filter", prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, NULL));
	}

	CASE("bad programs") {
		nnp();
		struct sock_filter odd[] = {
			BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 2),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		};
		struct sock_fprog p = { 2, odd };
		report("  unaligned load", sc(SECCOMP_SET_MODE_FILTER, 0, &p));
		struct sock_filter noret[] = { BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0) };
		struct sock_fprog q = { 1, noret };
		report("  no return", sc(SECCOMP_SET_MODE_FILTER, 0, &q));
		struct sock_fprog e = { 0, odd };
		report("  empty", sc(SECCOMP_SET_MODE_FILTER, 0, &e));
		report("  NULL program", sc(SECCOMP_SET_MODE_FILTER, 0, NULL));
		struct sock_fprog bad = { 2, (void *)8 };
		report("  bad pointer", sc(SECCOMP_SET_MODE_FILTER, 0, &bad));
		report("  unknown flag", filter_one(SYS_getpid, SECCOMP_RET_ALLOW, 1u << 20));
		report("  strict with args", sc(SECCOMP_SET_MODE_STRICT, 0, &p));
		report("  bad prctl mode", prctl(PR_SET_SECCOMP, 7, 0, 0, 0));
		printf("  PR_GET_SECCOMP: %d\n", prctl(PR_GET_SECCOMP));
	}

	CASE("errno") {
		nnp();
		report("  filter", filter_one(SYS_getpid, SECCOMP_RET_ERRNO | EPERM, SECCOMP_FILTER_FLAG_LOG));
		report("  getpid", syscall(SYS_getpid));
		report("  getppid", syscall(SYS_getppid) > 0 ? 1 : -1);
		printf("  PR_GET_SECCOMP: %d\n", prctl(PR_GET_SECCOMP));
		status_line("NoNewPrivs");
		status_line("Seccomp");
		status_line("Seccomp_filters");
		report("  strict after filter", prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT, 0, 0, 0));
		report("  big errno filter", filter_one(SYS_getuid, SECCOMP_RET_ERRNO | 50000, 0));
		report("  getuid", syscall(SYS_getuid));
		report("  errno 0 filter", filter_one(SYS_getgid, SECCOMP_RET_ERRNO | 0, 0));
		report("  getgid", syscall(SYS_getgid));
		status_line("Seccomp_filters");
	}

	CASE("stacked filters: newest wins among equals, strongest overall") {
		nnp();
		filter_one(SYS_getpid, SECCOMP_RET_ERRNO | EPERM, 0);
		filter_one(SYS_getpid, SECCOMP_RET_ERRNO | EACCES, 0);
		filter_one(SYS_getpid, SECCOMP_RET_LOG, 0);
		report("  getpid", syscall(SYS_getpid));
		filter_one(SYS_getpid, SECCOMP_RET_TRACE, 0);
		report("  getpid after TRACE rule", syscall(SYS_getpid));
		filter_one(SYS_getppid, SECCOMP_RET_TRACE, 0);
		report("  getppid (TRACE, no tracer)", syscall(SYS_getppid));
	}

	CASE("64-bit argument comparison") {
		nnp();
		/* kill(_, sig) with sig's high half 1 and low half 0 -> EDOM. */
		struct sock_filter f[] = {
			BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_kill, 0, 5),
			BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_HI(1)),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 1, 0, 3),
			BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(1)),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EDOM),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		};
		struct sock_fprog p = { sizeof f / sizeof f[0], f };
		report("  filter", sc(SECCOMP_SET_MODE_FILTER, 0, &p));
		report("  kill(self, 1<<32)", syscall(SYS_kill, getpid(), 1L << 32));
		report("  kill(self, 0)", syscall(SYS_kill, getpid(), 0L));
		report("  kill(self, 3<<32)", syscall(SYS_kill, getpid(), 3L << 32));
	}

	CASE("scratch memory and ALU") {
		nnp();
		/* errno = (nr * 2 + 1) & 0xff for getpid via memory and X. */
		struct sock_filter f[] = {
			BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getpid, 1, 0),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
			BPF_STMT(BPF_ST, 5),
			BPF_STMT(BPF_LDX | BPF_MEM, 5),
			BPF_STMT(BPF_ALU | BPF_ADD | BPF_X, 0),
			BPF_STMT(BPF_ALU | BPF_OR | BPF_K, 1),
			BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0xff),
			BPF_STMT(BPF_ALU | BPF_OR | BPF_K, SECCOMP_RET_ERRNO),
			BPF_STMT(BPF_RET | BPF_A, 0),
		};
		struct sock_fprog p = { sizeof f / sizeof f[0], f };
		report("  filter", sc(SECCOMP_SET_MODE_FILTER, 0, &p));
		long r = syscall(SYS_getpid);
		printf("  getpid: %ld errno %d\n", r, r < 0 ? errno : 0);
	}

	CASE("kill process") {
		nnp();
		filter_one(SYS_getppid, SECCOMP_RET_KILL_PROCESS, 0);
		syscall(SYS_getppid);
		printf("  survived\n");
	}

	CASE("kill thread, single-threaded") {
		nnp();
		filter_one(SYS_getppid, SECCOMP_RET_KILL_THREAD, 0);
		syscall(SYS_getppid);
		printf("  survived\n");
	}

	CASE("kill thread (prctl, the mode-2 call)") {
		nnp();
		struct sock_filter f[] = {
			BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		};
		struct sock_fprog p = { sizeof f / sizeof f[0], f };
		report("  prctl filter", prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &p));
		syscall(SYS_getppid);
		printf("  survived\n");
	}

	CASE("trap") {
		nnp();
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_sigaction = on_sigsys;
		sa.sa_flags = SA_SIGINFO;
		sigaction(SIGSYS, &sa, NULL);
		filter_one(SYS_getuid, SECCOMP_RET_TRAP | 0x42, 0);
		long r = syscall(SYS_getuid);
		printf("  getuid returned %ld\n", r);
		printf("  handler ran %d: sig SIGSYS %d code %d errno %#x syscall %d arch ok %d call_addr==rip %d rax %d\n", trap_info[7],
		       trap_info[0] == SIGSYS, trap_info[1], trap_info[2], trap_info[3], trap_info[4], trap_info[5], trap_info[6]);
	}

	CASE("trap without a handler") {
		nnp();
		filter_one(SYS_getuid, SECCOMP_RET_TRAP, 0);
		syscall(SYS_getuid);
		printf("  survived\n");
	}

	CASE("strict mode") {
		report("  PR_SET_SECCOMP strict", prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT, 0, 0, 0));
		const char msg[] = "  write still allowed\n";
		syscall(SYS_write, 1, msg, sizeof msg - 1);
		syscall(SYS_getpid);
		syscall(SYS_write, 1, "  survived\n", 11);
		syscall(SYS_exit, 0);
	}

	CASE("strict mode, then exit") {
		fflush(stdout);
		sc(SECCOMP_SET_MODE_STRICT, 0, NULL);
		syscall(SYS_exit, 7);
	}

	CASE("filters are inherited by fork and kept by exec") {
		nnp();
		filter_one(SYS_getpid, SECCOMP_RET_ERRNO | EACCES, 0);
		pid_t c = fork();
		if (c == 0) {
			report("  child getpid", syscall(SYS_getpid));
			execl("/bin/sh", "sh", "-c", "grep -E '^Seccomp' /proc/self/status | sed 's/^/  exec: /'", (char *)NULL);
			_exit(9);
		}
		wait_report(c);
	}

	CASE("TSYNC reaches the other threads") {
		nnp();
		pthread_t th;
		pthread_barrier_init(&tsync_barrier, NULL, 2);
		if (pthread_create(&th, NULL, tsync_thread, NULL))
			exit(4);
		pthread_barrier_wait(&tsync_barrier);
		report("  filter with TSYNC", filter_one(SYS_getpid, SECCOMP_RET_ERRNO | EPERM, SECCOMP_FILTER_FLAG_TSYNC));
		pthread_barrier_wait(&tsync_barrier);
		pthread_join(th, NULL);
		printf("  other thread's getpid: %s\n", ename(tsync_errno));
		report("  own getpid", syscall(SYS_getpid));
	}

	CASE("without TSYNC other threads keep theirs") {
		nnp();
		pthread_t th;
		pthread_barrier_init(&tsync_barrier, NULL, 2);
		if (pthread_create(&th, NULL, tsync_thread, NULL))
			exit(4);
		pthread_barrier_wait(&tsync_barrier);
		report("  filter", filter_one(SYS_getpid, SECCOMP_RET_ERRNO | EPERM, 0));
		pthread_barrier_wait(&tsync_barrier);
		pthread_join(th, NULL);
		printf("  other thread's getpid: %s\n", ename(tsync_errno));
		report("  own getpid", syscall(SYS_getpid));
	}
	return 0;
}
