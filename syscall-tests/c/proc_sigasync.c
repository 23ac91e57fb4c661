/* Checks asynchronous signal delivery to a CPU-bound loop (no syscalls) and that sigreturn restores its integer and FP state. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int failures;

static const char *errname(int e)
{
	switch (e) {
	case 0: return "0";
	case EINTR: return "EINTR";
	case EINVAL: return "EINVAL";
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

static unsigned get_mxcsr(void)
{
	unsigned m;
	__asm__ volatile("stmxcsr %0" : "=m"(m));
	return m;
}
static void set_mxcsr(unsigned m)
{
	__asm__ volatile("ldmxcsr %0" : : "m"(m));
}

static volatile double sink;
static volatile sig_atomic_t clobber_hits;
/* Switches to round-toward-+inf and uses FP registers and stack; if any of that leaked
 * into the interrupted loop, its result would change. */
static void on_clobber(int sig)
{
	(void)sig;
	set_mxcsr((get_mxcsr() & ~0x6000u) | 0x4000u);
	volatile double a = 1.0, b = 3.0;
	double acc = 0;
	for (int i = 0; i < 64; i++) {
		acc += a / b + i * 0.1;
		a = a * 1.0000001 + 0.3;
	}
	sink = acc;
	volatile char junk[2048];
	for (unsigned i = 0; i < sizeof junk; i++)
		junk[i] = (char)(i * 13);
	(void)junk[5];
	clobber_hits++;
}

/* Many live integer and FP values, no syscalls. noipa: must really be recomputed. */
__attribute__((noipa)) static double compute(int n)
{
	double x = 0.0, y = 1.0, z = 0.5, w = 2.0;
	long i1 = 1, i2 = 2, i3 = 3, i4 = 4, i5 = 5;
	for (int i = 0; i < n; i++) {
		x += 0.1 * i;
		y = y * 1.0000001 + 1e-9;
		z = z / 1.0000003 + 0.7;
		w = w + x / (y + 1.0);
		i1 = i1 * 6364136223846793005L + 1442695040888963407L;
		i2 += i1 >> 17;
		i3 ^= i2 + i;
		i4 += i3 * 3;
		i5 -= i4 ^ i1;
	}
	return x + y + z + w + (double)((i1 ^ i2 ^ i3 ^ i4 ^ i5) & 0xffffff);
}

int main(void)
{
	const int N = 200000;
	sigset_t empty;
	sigemptyset(&empty);
	sigprocmask(SIG_SETMASK, &empty, NULL);

	unsigned mx0 = get_mxcsr();
	double ref = compute(N);
	printf("reference result: %.17g\n", ref);

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_clobber;
	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(SIGUSR1, &sa, NULL) == 0, "sigaction SIGUSR1");

	/* A child pokes us every 0.3 ms while we compute. */
	pid_t me = getpid();
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		for (;;) {
			if (kill(me, SIGUSR1) < 0)
				_exit(0);
			struct timespec ts = { 0, 300000 };
			nanosleep(&ts, NULL);
		}
	}
	CHECK(pid > 0, "fork signaller");
	int mismatches = 0, rounds = 0;
	/* Natively 30 signals arrive within a few rounds; give up after ~2000 rounds. */
	while (rounds < 2000 && (clobber_hits < 30 || rounds < 20)) {
		if (compute(N) != ref)
			mismatches++;
		rounds++;
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	CHECK(clobber_hits >= 30, "30 signals delivered during a syscall-free computation");
	CHECK(mismatches == 0, "computation result unchanged by signal handlers");
	CHECK((get_mxcsr() & 0x6000u) == (mx0 & 0x6000u), "rounding mode restored after handlers");

	if (failures) {
		printf("%d failures\n", failures);
		return 1;
	}
	printf("all ok\n");
	return 0;
}
