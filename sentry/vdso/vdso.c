/*
 * rvisor's vDSO: the time functions Linux's x86-64 vDSO exports, computed
 * in user mode from the TSC with the parameters the sentry keeps in the
 * vvar page (one page below this image). The formula is the sentry's own
 * (sentry/src/kernel/clock.rs), on the same parameters, so a vDSO reading
 * and a system call reading never disagree about the order of events.
 *
 * Clocks the sentry cannot give from the TSC alone (the CPU-time clocks,
 * another process's clock) and getcpu (user mode cannot tell which vCPU it
 * runs on) are passed to the real system call. Errors are returned as
 * -errno, as Linux's vDSO does; the C library turns them into errno.
 */
#include <stdint.h>

#include "vvar.h"

typedef int clockid_t;
struct vdso_timespec {
	int64_t tv_sec;
	int64_t tv_nsec;
};
struct vdso_timeval {
	int64_t tv_sec;
	int64_t tv_usec;
};
struct vdso_timezone {
	int tz_minuteswest;
	int tz_dsttime;
};

#define NSEC 1000000000ULL

#define CLOCK_REALTIME 0
#define CLOCK_MONOTONIC 1
#define CLOCK_MONOTONIC_RAW 4
#define CLOCK_REALTIME_COARSE 5
#define CLOCK_MONOTONIC_COARSE 6
#define CLOCK_BOOTTIME 7
#define CLOCK_TAI 11

#define SYS_gettimeofday 96
#define SYS_time 201
#define SYS_clock_gettime 228
#define SYS_clock_getres 229
#define SYS_getcpu 309

/* Placed by the linker script one page below the image's first byte. */
extern const struct rvisor_vvar rvisor_vvar __attribute__((visibility("hidden")));

#define EXPORT __attribute__((visibility("default")))

static inline long syscall3(long nr, long a, long b, long c)
{
	long ret;
	__asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
	return ret;
}

/* The TSC, not read ahead of the instructions before it. */
static inline uint64_t rdtsc_ordered(void)
{
	uint32_t lo, hi;
	__asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi) : : "memory");
	return (uint64_t)hi << 32 | lo;
}

/* CLOCK_REALTIME (realtime != 0) or CLOCK_MONOTONIC now; 0 if unavailable. */
static int read_clock(int realtime, uint64_t *ns)
{
	const volatile struct rvisor_vvar *v = &rvisor_vvar;
	uint32_t seq, shift;
	uint64_t tsc0, mult, base, tsc;
	for (;;) {
		seq = v->seq;
		__asm__ volatile("" ::: "memory");
		if (!(seq & 1)) {
			tsc0 = v->tsc0;
			mult = v->mult;
			shift = v->shift;
			base = realtime ? v->real0 : v->mono0;
			tsc = rdtsc_ordered();
			__asm__ volatile("" ::: "memory");
			if (v->seq == seq)
				break;
		}
		__builtin_ia32_pause();
	}
	if (mult == 0 || shift > 127)
		return 0;
	/* The sentry's formula (clock::Params::elapsed_ns), to the bit. */
	uint64_t ticks = tsc > tsc0 ? tsc - tsc0 : 0;
	*ns = base + (uint64_t)(((unsigned __int128)ticks * mult) >> shift);
	return 1;
}

/* 1 for the clocks read from REALTIME, 0 for MONOTONIC, -1 for the rest. */
static inline int clock_base(clockid_t clk)
{
	switch (clk) {
	case CLOCK_REALTIME:
	case CLOCK_REALTIME_COARSE:
	case CLOCK_TAI:
		return 1;
	case CLOCK_MONOTONIC:
	case CLOCK_MONOTONIC_RAW:
	case CLOCK_MONOTONIC_COARSE:
	case CLOCK_BOOTTIME:
		return 0;
	default:
		return -1;
	}
}

EXPORT int __vdso_clock_gettime(clockid_t clk, struct vdso_timespec *ts)
{
	int base = clock_base(clk);
	uint64_t ns;
	if (base < 0 || !read_clock(base, &ns))
		return syscall3(SYS_clock_gettime, clk, (long)ts, 0);
	ts->tv_sec = ns / NSEC;
	ts->tv_nsec = ns % NSEC;
	return 0;
}

EXPORT int __vdso_gettimeofday(struct vdso_timeval *tv, struct vdso_timezone *tz)
{
	if (tv) {
		uint64_t ns;
		if (!read_clock(1, &ns))
			return syscall3(SYS_gettimeofday, (long)tv, (long)tz, 0);
		tv->tv_sec = ns / NSEC;
		tv->tv_usec = ns % NSEC / 1000;
	}
	if (tz) {
		tz->tz_minuteswest = 0;
		tz->tz_dsttime = 0;
	}
	return 0;
}

EXPORT int64_t __vdso_time(int64_t *t)
{
	uint64_t ns;
	if (!read_clock(1, &ns))
		return syscall3(SYS_time, (long)t, 0, 0);
	int64_t s = ns / NSEC;
	if (t)
		*t = s;
	return s;
}

EXPORT int __vdso_clock_getres(clockid_t clk, struct vdso_timespec *res)
{
	if (clock_base(clk) < 0)
		return syscall3(SYS_clock_getres, clk, (long)res, 0);
	if (res) {
		const volatile struct rvisor_vvar *v = &rvisor_vvar;
		int coarse = clk == CLOCK_REALTIME_COARSE || clk == CLOCK_MONOTONIC_COARSE;
		res->tv_sec = 0;
		res->tv_nsec = coarse ? v->coarse_res_ns : 1;
	}
	return 0;
}

EXPORT long __vdso_getcpu(unsigned *cpu, unsigned *node, void *cache)
{
	return syscall3(SYS_getcpu, (long)cpu, (long)node, (long)cache);
}

/* The unprefixed names Linux's vDSO also exports, as weak aliases. */
EXPORT int clock_gettime(clockid_t, struct vdso_timespec *) __attribute__((weak, alias("__vdso_clock_gettime")));
EXPORT int gettimeofday(struct vdso_timeval *, struct vdso_timezone *) __attribute__((weak, alias("__vdso_gettimeofday")));
EXPORT int64_t time(int64_t *) __attribute__((weak, alias("__vdso_time")));
EXPORT int clock_getres(clockid_t, struct vdso_timespec *) __attribute__((weak, alias("__vdso_clock_getres")));
EXPORT long getcpu(unsigned *, unsigned *, void *) __attribute__((weak, alias("__vdso_getcpu")));
