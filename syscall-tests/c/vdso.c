/* Checks the vDSO: AT_SYSINFO_EHDR names an ELF whose dynamic symbols include Linux's x86-64 time functions (names, versions, bindings printed), its clock_gettime agrees in order with the system call across interleaved calls, gettimeofday/time/clock_getres/getcpu work, /proc/self/maps shows [vdso] and [vvar], a forked child keeps it, a writable vDSO is a private copy, the vvar page can be neither written nor made writable or executable, and munmap of both leaves system calls working. */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int failures;

static void report(const char *what, int ok)
{
	printf("%s: %s\n", what, ok ? "ok" : "fail");
	failures += !ok;
}

/* The symbols this test looks for: Linux's x86-64 vDSO time functions. */
static const char *const wanted[] = {
	"__vdso_clock_gettime", "clock_gettime", "__vdso_gettimeofday", "gettimeofday",
	"__vdso_time", "time", "__vdso_clock_getres", "clock_getres",
	"__vdso_getcpu", "getcpu",
};
#define NWANTED (sizeof wanted / sizeof wanted[0])

struct vdso {
	const unsigned char *base;
	const Elf64_Sym *symtab;
	const char *strtab;
	const Elf64_Half *versym;
	const Elf64_Verdef *verdef;
	size_t nsyms;
};

/* Number of symbols from DT_GNU_HASH: one past the highest chain end. */
static size_t gnu_hash_count(const uint32_t *h)
{
	uint32_t nbuckets = h[0], symoffset = h[1], bloom = h[2];
	const uint32_t *buckets = h + 4 + bloom * 2;
	const uint32_t *chain = buckets + nbuckets;
	uint32_t last = 0;
	for (uint32_t i = 0; i < nbuckets; i++)
		if (buckets[i] > last)
			last = buckets[i];
	if (last < symoffset)
		return symoffset;
	while (!(chain[last - symoffset] & 1))
		last++;
	return last + 1;
}

static int parse(struct vdso *v, const unsigned char *base)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)base;
	memset(v, 0, sizeof *v);
	v->base = base;
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh->e_type != ET_DYN || eh->e_machine != EM_X86_64)
		return 0;
	const Elf64_Phdr *ph = (const Elf64_Phdr *)(base + eh->e_phoff);
	const Elf64_Dyn *dyn = NULL;
	uintptr_t load_bias = 0;
	int loads = 0;
	for (int i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_type == PT_LOAD) {
			load_bias = (uintptr_t)base + ph[i].p_offset - ph[i].p_vaddr;
			loads++;
		} else if (ph[i].p_type == PT_DYNAMIC) {
			dyn = (const Elf64_Dyn *)(base + ph[i].p_offset);
		}
	}
	if (!dyn || loads == 0)
		return 0;
	const uint32_t *hash = NULL, *gnu_hash = NULL;
	for (; dyn->d_tag != DT_NULL; dyn++) {
		const void *p = (const void *)(load_bias + dyn->d_un.d_ptr);
		switch (dyn->d_tag) {
		case DT_SYMTAB: v->symtab = p; break;
		case DT_STRTAB: v->strtab = p; break;
		case DT_HASH: hash = p; break;
		case DT_GNU_HASH: gnu_hash = p; break;
		case DT_VERSYM: v->versym = p; break;
		case DT_VERDEF: v->verdef = p; break;
		}
	}
	if (!v->symtab || !v->strtab || (!hash && !gnu_hash))
		return 0;
	v->nsyms = hash ? hash[1] : gnu_hash_count(gnu_hash);
	return 1;
}

/* The name of version index `ndx` in the version definitions. */
static const char *version_name(const struct vdso *v, unsigned ndx)
{
	const Elf64_Verdef *d = v->verdef;
	while (d) {
		if ((d->vd_ndx & 0x7fff) == ndx) {
			const Elf64_Verdaux *a = (const Elf64_Verdaux *)((const char *)d + d->vd_aux);
			return v->strtab + a->vda_name;
		}
		if (!d->vd_next)
			break;
		d = (const Elf64_Verdef *)((const char *)d + d->vd_next);
	}
	return "(none)";
}

static const Elf64_Sym *lookup(const struct vdso *v, const char *name, size_t *idx)
{
	for (size_t i = 1; i < v->nsyms; i++) {
		if (!strcmp(v->strtab + v->symtab[i].st_name, name)) {
			if (idx)
				*idx = i;
			return &v->symtab[i];
		}
	}
	return NULL;
}

static void *sym_addr(const struct vdso *v, const char *name)
{
	const Elf64_Sym *s = lookup(v, name, NULL);
	if (!s || s->st_shndx == SHN_UNDEF)
		return NULL;
	/* The image is linked at 0 and mapped from its first byte. */
	return (void *)(v->base + s->st_value);
}

static long long ns(const struct timespec *t)
{
	return (long long)t->tv_sec * 1000000000LL + t->tv_nsec;
}

typedef int (*gettime_fn)(clockid_t, struct timespec *);

/* Interleaves vDSO, libc and system-call readings of `clk`; each must be
   at or after the one before. */
static int interleaved_in_order(gettime_fn vdso_gettime, clockid_t clk)
{
	struct timespec t;
	long long prev = 0;
	for (int i = 0; i < 3000; i++) {
		int r;
		switch (i % 3) {
		case 0: r = vdso_gettime(clk, &t); break;
		case 1: r = (int)syscall(SYS_clock_gettime, clk, &t); break;
		default: r = clock_gettime(clk, &t); break;
		}
		if (r != 0 || ns(&t) < prev)
			return 0;
		prev = ns(&t);
	}
	return 1;
}

/* The [vdso] and [vvar] lines of /proc/self/maps: their start addresses. */
static void find_maps(uintptr_t *vdso, uintptr_t *vdso_end, uintptr_t *vvar, char *vdso_perms)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	*vdso = *vdso_end = *vvar = 0;
	while (f && fgets(line, sizeof line, f)) {
		unsigned long lo, hi;
		char perms[8];
		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3)
			continue;
		if (strstr(line, "[vdso]")) {
			*vdso = lo;
			*vdso_end = hi;
			strcpy(vdso_perms, perms);
		} else if (strstr(line, "[vvar]")) {
			*vvar = lo;
		}
	}
	if (f)
		fclose(f);
}

int main(void)
{
	const unsigned char *base = (const unsigned char *)getauxval(AT_SYSINFO_EHDR);
	report("AT_SYSINFO_EHDR present", base != NULL);
	if (!base)
		return 1;
	struct vdso v;
	report("AT_SYSINFO_EHDR is a 64-bit x86-64 ET_DYN ELF with dynamic symbols", parse(&v, base));
	if (!v.symtab)
		return 1;
	report("vDSO has version tables", v.versym && v.verdef);

	for (size_t i = 0; i < NWANTED; i++) {
		size_t idx = 0;
		const Elf64_Sym *s = lookup(&v, wanted[i], &idx);
		if (!s) {
			printf("symbol %s missing\n", wanted[i]);
			continue;
		}
		const char *ver = v.versym && v.verdef ? version_name(&v, v.versym[idx] & 0x7fff) : "(none)";
		printf("symbol %s@%s %s %s defined=%s\n", wanted[i], ver,
		       ELF64_ST_TYPE(s->st_info) == STT_FUNC ? "FUNC" : "OTHER",
		       ELF64_ST_BIND(s->st_info) == STB_WEAK ? "WEAK" : ELF64_ST_BIND(s->st_info) == STB_GLOBAL ? "GLOBAL" : "LOCAL",
		       s->st_shndx != SHN_UNDEF ? "yes" : "no");
	}

	gettime_fn vgettime = (gettime_fn)sym_addr(&v, "__vdso_clock_gettime");
	int (*vgettimeofday)(struct timeval *, struct timezone *) = sym_addr(&v, "__vdso_gettimeofday");
	time_t (*vtime)(time_t *) = sym_addr(&v, "__vdso_time");
	int (*vgetres)(clockid_t, struct timespec *) = sym_addr(&v, "__vdso_clock_getres");
	long (*vgetcpu)(unsigned *, unsigned *, void *) = sym_addr(&v, "__vdso_getcpu");
	if (!vgettime || !vgettimeofday || !vtime || !vgetres || !vgetcpu) {
		printf("vDSO functions missing\n");
		return 1;
	}

	static const struct { clockid_t id; const char *name; } clocks[] = {
		{CLOCK_MONOTONIC, "MONOTONIC"}, {CLOCK_BOOTTIME, "BOOTTIME"},
		{CLOCK_MONOTONIC_RAW, "MONOTONIC_RAW"}, {CLOCK_REALTIME, "REALTIME"},
		{CLOCK_MONOTONIC_COARSE, "MONOTONIC_COARSE"}, {CLOCK_PROCESS_CPUTIME_ID, "PROCESS_CPUTIME"},
		{CLOCK_THREAD_CPUTIME_ID, "THREAD_CPUTIME"},
	};
	for (size_t i = 0; i < sizeof clocks / sizeof clocks[0]; i++) {
		char what[96];
		snprintf(what, sizeof what, "%s: vDSO, syscall and libc readings interleaved stay in order", clocks[i].name);
		report(what, interleaved_in_order(vgettime, clocks[i].id));
	}
	struct timespec ts;
	report("vDSO clock_gettime(invalid clock) returns -EINVAL", vgettime(100, &ts) == -EINVAL);

	struct timespec rt, rt2;
	struct timeval tv;
	struct timezone tz = {123, 456};
	vgettime(CLOCK_REALTIME, &rt);
	int g = vgettimeofday(&tv, &tz);
	time_t tt = 0, t1 = vtime(&tt);
	syscall(SYS_clock_gettime, CLOCK_REALTIME, &rt2);
	report("vDSO gettimeofday returns 0, zeroes the timezone", g == 0 && tz.tz_minuteswest == 0 && tz.tz_dsttime == 0);
	report("vDSO gettimeofday within a second of REALTIME", tv.tv_sec >= rt.tv_sec && tv.tv_sec <= rt2.tv_sec + 1 && tv.tv_usec >= 0 && tv.tv_usec < 1000000);
	report("vDSO time() returns and stores the same value", t1 == tt);
	/* time() reads the coarse clock, which may still be in the previous
	 * second for up to a tick after REALTIME crossed into the next one. */
	report("vDSO time() within a second of REALTIME", t1 >= rt.tv_sec - 1 && t1 <= rt2.tv_sec + 1);
	report("vDSO gettimeofday(NULL, NULL) returns 0", vgettimeofday(NULL, NULL) == 0);
	report("vDSO time(NULL) agrees with libc time()", labs((long)(vtime(NULL) - time(NULL))) <= 1);
	report("REALTIME is after 2020", rt.tv_sec > 1577836800LL);

	struct timespec res = {-1, -1}, sres = {-1, -1};
	report("vDSO clock_getres(MONOTONIC) matches the system call",
	       vgetres(CLOCK_MONOTONIC, &res) == 0 && syscall(SYS_clock_getres, CLOCK_MONOTONIC, &sres) == 0 &&
		       res.tv_sec == sres.tv_sec && res.tv_nsec == sres.tv_nsec && res.tv_nsec > 0);
	report("vDSO clock_getres(MONOTONIC_COARSE) matches the system call",
	       vgetres(CLOCK_MONOTONIC_COARSE, &res) == 0 && syscall(SYS_clock_getres, CLOCK_MONOTONIC_COARSE, &sres) == 0 &&
		       res.tv_sec == sres.tv_sec && res.tv_nsec == sres.tv_nsec);
	report("vDSO clock_getres(REALTIME, NULL) returns 0", vgetres(CLOCK_REALTIME, NULL) == 0);
	report("vDSO clock_getres(invalid clock) returns -EINVAL", vgetres(100, &res) == -EINVAL);
	unsigned cpu = ~0u, node = ~0u;
	report("vDSO getcpu returns 0 and a CPU below the count",
	       vgetcpu(&cpu, &node, NULL) == 0 && cpu < (unsigned)sysconf(_SC_NPROCESSORS_CONF) && node != ~0u);

	uintptr_t mvdso, mvdso_end, mvvar;
	char perms[8] = "";
	find_maps(&mvdso, &mvdso_end, &mvvar, perms);
	report("/proc/self/maps shows [vdso] at AT_SYSINFO_EHDR", mvdso == (uintptr_t)base);
	report("[vdso] is r-xp", !strcmp(perms, "r-xp"));
	report("/proc/self/maps shows [vvar] below [vdso]", mvvar != 0 && mvvar < mvdso);

	/* A forked child has the same vDSO, working. */
	pid_t pid = fork();
	if (pid == 0) {
		struct timespec c;
		uintptr_t a, b, w;
		char p[8];
		find_maps(&a, &b, &w, p);
		_exit(a == mvdso && vgettime(CLOCK_MONOTONIC, &c) == 0 && ns(&c) > 0 ? 0 : 1);
	}
	int st = -1;
	waitpid(pid, &st, 0);
	report("a forked child keeps a working vDSO", WIFEXITED(st) && WEXITSTATUS(st) == 0);

	/* Made writable (as a debugger would), the vDSO is the child's own copy. */
	pid = fork();
	if (pid == 0) {
		if (mprotect((void *)mvdso, mvdso_end - mvdso, PROT_READ | PROT_WRITE | PROT_EXEC))
			_exit(2);
		((volatile unsigned char *)mvdso)[EI_PAD + 1] = 0x5a;
		struct timespec c;
		_exit(((volatile unsigned char *)mvdso)[EI_PAD + 1] == 0x5a && vgettime(CLOCK_MONOTONIC, &c) == 0 ? 0 : 1);
	}
	waitpid(pid, &st, 0);
	report("a child can make its vDSO writable and write it", WIFEXITED(st) && WEXITSTATUS(st) == 0);
	report("the parent's vDSO is unchanged by the child's write", base[EI_PAD + 1] == 0);
	errno = 0;
	report("mprotect([vvar], PROT_WRITE) fails with EACCES", mprotect((void *)mvvar, 4096, PROT_READ | PROT_WRITE) == -1 && errno == EACCES);
	errno = 0;
	report("mprotect([vvar], PROT_EXEC) fails with EACCES", mprotect((void *)mvvar, 4096, PROT_READ | PROT_EXEC) == -1 && errno == EACCES);
	pid = fork();
	if (pid == 0) {
		*(volatile unsigned char *)mvvar = 1;
		_exit(0);
	}
	waitpid(pid, &st, 0);
	report("a write to [vvar] is SIGSEGV", WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);

	/* Without its vDSO a process still has the system calls. */
	pid = fork();
	if (pid == 0) {
		if (munmap((void *)mvdso, mvdso_end - mvdso) || munmap((void *)mvvar, mvdso - mvvar))
			_exit(2);
		struct timespec c;
		uintptr_t a, b, w;
		char p[8];
		find_maps(&a, &b, &w, p);
		_exit(a == 0 && w == 0 && syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &c) == 0 ? 0 : 1);
	}
	waitpid(pid, &st, 0);
	report("after munmap of [vdso] and [vvar] system calls still work", WIFEXITED(st) && WEXITSTATUS(st) == 0);
	struct timespec after;
	report("the parent's vDSO still works after the child's munmap", vgettime(CLOCK_MONOTONIC, &after) == 0 && ns(&after) > 0);

	printf("vdso %s\n", failures ? "FAILED" : "ok");
	return failures ? 1 : 0;
}
