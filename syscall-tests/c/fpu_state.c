/* Checks that the whole FPU state (XMM0-15, the upper YMM halves when AVX is on, the x87
 * stack and control word, MXCSR) survives system calls: trivial ones, ones that block
 * while another process or thread with a different FPU state runs, fork, and a signal
 * whose handler changes everything (and whose frame must show the interrupted state). */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

static int failures;

#define CHECK(cond, what)                               \
	do {                                            \
		if (cond)                               \
			printf("%s: ok\n", what);       \
		else {                                  \
			printf("%s: FAIL\n", what);     \
			failures++;                     \
		}                                       \
	} while (0)

/* The state loaded before the system calls and read back after them. */
struct fstate {
	uint8_t ymm[16][32]; /* only the low 16 bytes of each without AVX */
	long double st[3];   /* x87 st(0)..st(2) */
	uint32_t mxcsr;
	uint16_t fcw;
	uint16_t pad;
	uint32_t caller_mxcsr; /* scratch: the caller's values, put back at the end */
	uint16_t caller_fcw;
};

/* One system call made between loading and reading the state. */
struct call {
	long nr, a1, a2, a3, ret;
};

static int have_avx;

/* Loads `in`, makes the `n` calls (nothing else touches the FPU in between), stores the
 * state into `out`, then puts the caller's FCW and MXCSR back and empties the x87 stack.
 * r12-r15 hold the pointers: the syscall ABI keeps them. The stack is left alone (the
 * compiler may keep data in the red zone). */
#define RUN_ASM(LOADV, STOREV)                                                             \
	__asm__ volatile("fnstcw 572(%%r13)\n\t"                                               \
			 "stmxcsr 568(%%r13)\n\t" LOADV                                         \
			 "fninit\n\t"                                                          \
			 "fldt 544(%%r12)\n\t"                                                 \
			 "fldt 528(%%r12)\n\t"                                                 \
			 "fldt 512(%%r12)\n\t"                                                 \
			 "fldcw 564(%%r12)\n\t"                                                \
			 "ldmxcsr 560(%%r12)\n\t"                                              \
			 "1: test %%r15, %%r15\n\t"                                            \
			 "jz 2f\n\t"                                                           \
			 "mov 0(%%r14), %%rax\n\t"                                             \
			 "mov 8(%%r14), %%rdi\n\t"                                             \
			 "mov 16(%%r14), %%rsi\n\t"                                            \
			 "mov 24(%%r14), %%rdx\n\t"                                            \
			 "syscall\n\t"                                                         \
			 "mov %%rax, 32(%%r14)\n\t"                                            \
			 "add $40, %%r14\n\t"                                                  \
			 "dec %%r15\n\t"                                                       \
			 "jmp 1b\n\t"                                                          \
			 "2:\n\t" STOREV                                                       \
			 "stmxcsr 560(%%r13)\n\t"                                              \
			 "fnstcw 564(%%r13)\n\t"                                               \
			 "fstpt 512(%%r13)\n\t"                                                \
			 "fstpt 528(%%r13)\n\t"                                                \
			 "fstpt 544(%%r13)\n\t"                                                \
			 "fldcw 572(%%r13)\n\t"                                                \
			 "ldmxcsr 568(%%r13)\n\t"                                              \
			 :                                                                     \
			 : "r"(r12), "r"(r13), "r"(r14), "r"(r15)                              \
			 : "rax", "rdi", "rsi", "rdx", "rcx", "r11", "xmm0", "xmm1", "xmm2",   \
			   "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",     \
			   "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "memory", "cc")

#define V16(op, i) op " " #i "*32(%%r12), %%xmm" #i "\n\t"
#define LOAD_XMM                                                                           \
	V16("movdqu", 0) V16("movdqu", 1) V16("movdqu", 2) V16("movdqu", 3) V16("movdqu", 4)   \
	V16("movdqu", 5) V16("movdqu", 6) V16("movdqu", 7) V16("movdqu", 8) V16("movdqu", 9)   \
	V16("movdqu", 10) V16("movdqu", 11) V16("movdqu", 12) V16("movdqu", 13)               \
	V16("movdqu", 14) V16("movdqu", 15)
#define S16(op, i) op " %%xmm" #i ", " #i "*32(%%r13)\n\t"
#define STORE_XMM                                                                          \
	S16("movdqu", 0) S16("movdqu", 1) S16("movdqu", 2) S16("movdqu", 3) S16("movdqu", 4)   \
	S16("movdqu", 5) S16("movdqu", 6) S16("movdqu", 7) S16("movdqu", 8) S16("movdqu", 9)   \
	S16("movdqu", 10) S16("movdqu", 11) S16("movdqu", 12) S16("movdqu", 13)               \
	S16("movdqu", 14) S16("movdqu", 15)
#define V32(i) "vmovdqu " #i "*32(%%r12), %%ymm" #i "\n\t"
#define LOAD_YMM                                                                           \
	V32(0) V32(1) V32(2) V32(3) V32(4) V32(5) V32(6) V32(7) V32(8) V32(9) V32(10) V32(11)  \
	V32(12) V32(13) V32(14) V32(15)
#define S32(i) "vmovdqu %%ymm" #i ", " #i "*32(%%r13)\n\t"
#define STORE_YMM                                                                          \
	S32(0) S32(1) S32(2) S32(3) S32(4) S32(5) S32(6) S32(7) S32(8) S32(9) S32(10) S32(11)  \
	S32(12) S32(13) S32(14) S32(15) "vzeroupper\n\t"

_Static_assert(offsetof(struct fstate, st) == 512, "layout used by the assembly");
_Static_assert(offsetof(struct fstate, mxcsr) == 560, "layout used by the assembly");
_Static_assert(offsetof(struct fstate, fcw) == 564, "layout used by the assembly");
_Static_assert(offsetof(struct fstate, caller_mxcsr) == 568, "layout used by the assembly");
_Static_assert(offsetof(struct fstate, caller_fcw) == 572, "layout used by the assembly");

static void run(const struct fstate *in, struct fstate *out, struct call *calls, long n)
{
	register const struct fstate *r12 __asm__("r12") = in;
	register struct fstate *r13 __asm__("r13") = out;
	register struct call *r14 __asm__("r14") = calls;
	register long r15 __asm__("r15") = n;
	if (have_avx)
		RUN_ASM(LOAD_YMM, STORE_YMM);
	else
		RUN_ASM(LOAD_XMM, STORE_XMM);
}

static void pattern(struct fstate *s, int seed)
{
	memset(s, 0, sizeof(*s));
	for (int i = 0; i < 16; i++)
		for (int j = 0; j < 32; j++)
			s->ymm[i][j] = (uint8_t)(i * 32 + j + seed * 7);
	s->st[0] = 1.0L / (3 + seed);
	s->st[1] = -12345.678L * (seed + 1);
	s->st[2] = 1e300L * (seed + 2);
	s->mxcsr = seed & 1 ? 0x7f80 : 0xbf80; /* rounding toward zero / down, all masked */
	s->fcw = seed & 1 ? 0x0f7f : 0x077f;   /* extended precision, truncate / round down */
}

static int same(const struct fstate *a, const struct fstate *b)
{
	int w = have_avx ? 32 : 16;
	for (int i = 0; i < 16; i++)
		if (memcmp(a->ymm[i], b->ymm[i], w) != 0)
			return 0;
	for (int i = 0; i < 3; i++)
		if (memcmp(&a->st[i], &b->st[i], 10) != 0)
			return 0;
	return a->mxcsr == b->mxcsr && a->fcw == b->fcw;
}

static int survives(int seed, struct call *calls, long n)
{
	struct fstate in, out;
	pattern(&in, seed);
	memset(&out, 0xa5, sizeof(out));
	run(&in, &out, calls, n);
	return same(&in, &out);
}

/* --- signals --------------------------------------------------------------------------- */

static struct fstate sig_expect;
static volatile int frame_ok, handler_init_ok, handler_ran;

static void clobber(void)
{
	struct fstate junk, out;
	pattern(&junk, 99);
	run(&junk, &out, NULL, 0);
	/* Odd control words too (sigreturn must put the old ones back). */
	unsigned m = 0x3f80;
	unsigned short c = 0x0c7f;
	__asm__ volatile("ldmxcsr %0\n\tfldcw %1" ::"m"(m), "m"(c));
}

static void on_usr1(int sig, siginfo_t *si, void *ctx)
{
	(void)sig;
	(void)si;
	unsigned m;
	unsigned short c;
	__asm__ volatile("stmxcsr %0\n\tfnstcw %1" : "=m"(m), "=m"(c));
	/* A handler starts with the default FPU environment. */
	handler_init_ok = m == 0x1f80 && c == 0x37f;
	ucontext_t *uc = ctx;
	struct _libc_fpstate *fp = uc->uc_mcontext.fpregs;
	int ok = fp != NULL;
	for (int i = 0; ok && i < 16; i++)
		ok = memcmp(&fp->_xmm[i], sig_expect.ymm[i], 16) == 0;
	ok = ok && fp->mxcsr == sig_expect.mxcsr && fp->cwd == sig_expect.fcw;
	/* The frame's st(0) is the last value loaded. */
	for (int i = 0; ok && i < 3; i++)
		ok = memcmp(&fp->_st[i], &sig_expect.st[i], 10) == 0;
	frame_ok = ok;
	clobber();
	handler_ran = 1;
}

/* --- threads --------------------------------------------------------------------------- */

static void *yielder(void *arg)
{
	long seed = (long)arg;
	long bad = 0;
	for (int i = 0; i < 2000; i++) {
		struct call c[2] = {{SYS_sched_yield, 0, 0, 0, 0}, {SYS_getpid, 0, 0, 0, 0}};
		bad += !survives((int)seed + (i & 1) * 2, c, 2);
	}
	return (void *)bad;
}

int main(void)
{
	unsigned a, b, c, d;
	__asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(1), "c"(0));
	if ((c & (1u << 27)) && (c & (1u << 28))) {
		unsigned lo, hi;
		__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
		have_avx = (lo & 6) == 6;
	}

	struct call getpid_calls[4] = {
		{SYS_getpid, 0, 0, 0, 0}, {SYS_getppid, 0, 0, 0, 0}, {SYS_getuid, 0, 0, 0, 0}, {SYS_getpid, 0, 0, 0, 0}};
	CHECK(survives(1, getpid_calls, 4), "state survives trivial syscalls");
	int many = 1;
	for (int i = 0; i < 1000 && many; i++)
		many = survives(i, getpid_calls, 1);
	CHECK(many, "state survives 1000 getpid calls with changing values");

	struct timespec ts = {0, 2000000};
	struct call sleep_call = {SYS_nanosleep, (long)&ts, 0, 0, 0};
	CHECK(survives(2, &sleep_call, 1) && sleep_call.ret == 0, "state survives a blocking nanosleep");

	/* A child with other FPU values runs while the parent waits on a pipe. */
	int p1[2], p2[2];
	if (pipe(p1) || pipe(p2))
		return 1;
	signal(SIGPIPE, SIG_IGN);
	pid_t child = fork();
	if (child == 0) {
		close(p1[1]);
		close(p2[0]);
		char x;
		for (int i = 0; i < 200; i++) {
			if (read(p1[0], &x, 1) != 1)
				_exit(2);
			struct call w = {SYS_write, p2[1], (long)&x, 1, 0};
			if (!survives(1000 + i, &w, 1))
				_exit(3);
		}
		_exit(0);
	}
	close(p1[0]);
	close(p2[1]);
	int pp = 1;
	char x = 'x', y;
	for (int i = 0; i < 200; i++) {
		struct call c2[2] = {{SYS_write, p1[1], (long)&x, 1, 0}, {SYS_read, p2[0], (long)&y, 1, 0}};
		pp = pp && survives(i + 3, c2, 2) && c2[0].ret == 1 && c2[1].ret == 1;
	}
	int st;
	waitpid(child, &st, 0);
	CHECK(pp, "state survives ping-pong with another process");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the other process's state survives too");

	/* fork: the child starts with the parent's state at the fork. */
	struct fstate in, out;
	pattern(&in, 5);
	struct call f = {SYS_fork, 0, 0, 0, 0};
	run(&in, &out, &f, 1);
	if (f.ret == 0)
		_exit(same(&in, &out) ? 0 : 1);
	CHECK(f.ret > 0 && same(&in, &out), "parent state survives fork");
	waitpid((pid_t)f.ret, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "fork child starts with the parent's state");

	/* A signal handler that changes everything; sigreturn restores it. */
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_usr1;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGUSR1, &sa, NULL);
	pattern(&sig_expect, 6);
	struct call k = {SYS_kill, getpid(), SIGUSR1, 0, 0};
	run(&sig_expect, &out, &k, 1);
	CHECK(handler_ran && k.ret == 0, "handler ran");
	CHECK(handler_init_ok, "handler starts with the default FPU environment");
	CHECK(frame_ok, "signal frame holds the interrupted FPU state");
	CHECK(same(&sig_expect, &out), "state restored after the handler");

	/* Threads of one process take turns on the CPU with different values. */
	pthread_t th[2];
	for (long i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, yielder, (void *)(i + 10));
	long bad = 0;
	for (int i = 0; i < 2; i++) {
		void *r;
		pthread_join(th[i], &r);
		bad += (long)r;
	}
	CHECK(bad == 0, "threads yielding to each other keep their own state");

	return failures != 0;
}
