/*
 * The vvar page: the clock parameters the sentry publishes for the vDSO.
 * The sentry's `kernel::vdso::VvarData` is the same structure; both sides
 * check the offsets at compile time, so a change must be made to both.
 *
 * A reading is taken only while `seq` is even and unchanged across it (a
 * sequence lock): the sentry makes `seq` odd while it rewrites the fields.
 */
#ifndef RVISOR_VVAR_H
#define RVISOR_VVAR_H

#include <stdint.h>

struct rvisor_vvar {
	uint32_t seq;
	/* TSC ticks to nanoseconds: ticks * mult >> shift (128-bit product). */
	uint32_t shift;
	/* TSC value at which the clocks read `mono0` and `real0`. */
	uint64_t tsc0;
	uint64_t mult;
	/* CLOCK_MONOTONIC and CLOCK_REALTIME at `tsc0`, in nanoseconds. */
	uint64_t mono0;
	uint64_t real0;
	/* What clock_getres reports for the *_COARSE clocks. */
	uint64_t coarse_res_ns;
};

_Static_assert(__builtin_offsetof(struct rvisor_vvar, seq) == 0, "vvar layout");
_Static_assert(__builtin_offsetof(struct rvisor_vvar, shift) == 4, "vvar layout");
_Static_assert(__builtin_offsetof(struct rvisor_vvar, tsc0) == 8, "vvar layout");
_Static_assert(__builtin_offsetof(struct rvisor_vvar, mult) == 16, "vvar layout");
_Static_assert(__builtin_offsetof(struct rvisor_vvar, mono0) == 24, "vvar layout");
_Static_assert(__builtin_offsetof(struct rvisor_vvar, real0) == 32, "vvar layout");
_Static_assert(__builtin_offsetof(struct rvisor_vvar, coarse_res_ns) == 40, "vvar layout");
_Static_assert(sizeof(struct rvisor_vvar) == 48, "vvar layout");

#endif
