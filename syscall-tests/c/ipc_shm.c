/* System V shared memory: shmget/shmat/shmdt/shmctl. Pages shared across
 * fork (touched before or after it), attach counts and last pids, deferred
 * removal while attached, SHM_RDONLY/SHM_RND/SHM_REMAP, IPC_SET, SHM_LOCK,
 * the info and index-based stat commands, permissions as an unprivileged
 * child, /proc/sysvipc/shm and /proc/self/maps, exec detaching, and errno
 * for bad arguments and bad pointers. Prints no ids, keys, pids,
 * addresses or times, so native and sandboxed output compare. */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096UL
#define BAD ((void *)8)

static const char *en(int e)
{
	switch (e) {
	case 0: return "ok";
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case EINTR: return "EINTR";
	case E2BIG: return "E2BIG";
	case EAGAIN: return "EAGAIN";
	case ENOMEM: return "ENOMEM";
	case EACCES: return "EACCES";
	case EFAULT: return "EFAULT";
	case EEXIST: return "EEXIST";
	case EINVAL: return "EINVAL";
	case ENOSPC: return "ENOSPC";
	case EFBIG: return "EFBIG";
	case ERANGE: return "ERANGE";
	case EIDRM: return "EIDRM";
	case ENOMSG: return "ENOMSG";
	case ENOSYS: return "ENOSYS";
	default: return "E?";
	}
}

/* Prints the errno name of a call that returns -1 on failure. */
#define R(what, expr)                                                 \
	do {                                                          \
		errno = 0;                                            \
		long r_ = (long)(expr);                               \
		printf("%s: %s\n", what, r_ == -1 ? en(errno) : "ok"); \
	} while (0)

#define YN(what, cond) printf("%s: %s\n", what, (cond) ? "yes" : "no")

/* Raw calls: no library conversion of buffers, so bad pointers reach the kernel. */
static long k_shmctl(int id, int cmd, void *buf)
{
	return syscall(SYS_shmctl, id, cmd, buf);
}

static struct shmid_ds st(int id)
{
	struct shmid_ds d;
	memset(&d, 0, sizeof d);
	if (shmctl(id, IPC_STAT, &d) != 0)
		d.shm_segsz = (size_t)-1;
	return d;
}

static unsigned long nattch(int id)
{
	struct shmid_ds d;
	return shmctl(id, IPC_STAT, &d) == 0 ? d.shm_nattch : 999;
}

/* Keys nobody else uses: the test process's own range (set in main,
 * so forked children name the same keys). */
static int key_base;
static key_t key_of(int n)
{
	return (key_t)(0x5e000000 | (key_base << 8) | n);
}

static int drop_privileges(void)
{
	gid_t g = 1000;
	return setgroups(1, &g) || setgid(1000) || setuid(1000);
}

static void errors(void)
{
	printf("-- errors\n");
	R("shmget size 0", shmget(IPC_PRIVATE, 0, 0600));
	R("shmget size huge", shmget(IPC_PRIVATE, (size_t)-1, 0600));
	R("shmget unknown key", shmget(key_of(1), PG, 0600));
	int id;
	R("shmget create", id = shmget(key_of(1), 3 * PG, IPC_CREAT | 0600));
	R("shmget IPC_EXCL", shmget(key_of(1), PG, IPC_CREAT | IPC_EXCL | 0600));
	R("shmget bigger", shmget(key_of(1), 4 * PG, 0600));
	YN("shmget smaller same id", shmget(key_of(1), 1, 0600) == id);
	YN("shmget size 0 same id", shmget(key_of(1), 0, 0) == id);
	R("shmat id -1", shmat(-1, NULL, 0));
	R("shmat unknown id", shmat(id + 1000000, NULL, 0));
	R("shmat unaligned", shmat(id, (void *)0x10000001, 0));
	R("shmat NULL SHM_REMAP", shmat(id, NULL, SHM_REMAP));
	R("shmdt unaligned", shmdt((void *)0x10000001));
	R("shmdt nothing there", shmdt((void *)0x10000000));
	R("shmctl id -1", k_shmctl(-1, IPC_STAT, &(struct shmid_ds){0}));
	R("shmctl cmd -1", k_shmctl(id, -1, NULL));
	R("shmctl cmd 99", k_shmctl(id, 99, NULL));
	R("shmctl IPC_64|IPC_STAT", k_shmctl(id, 0x100 | IPC_STAT, &(struct shmid_ds){0}));
	R("IPC_STAT bad pointer", k_shmctl(id, IPC_STAT, BAD));
	R("IPC_SET bad pointer", k_shmctl(id, IPC_SET, BAD));
	R("IPC_INFO bad pointer", k_shmctl(0, IPC_INFO, BAD));
	R("SHM_INFO bad pointer", k_shmctl(0, SHM_INFO, BAD));
	struct shmid_ds d = st(id);
	d.shm_perm.uid = (uid_t)-1;
	R("IPC_SET uid -1", shmctl(id, IPC_SET, &d));
	R("IPC_RMID", shmctl(id, IPC_RMID, NULL));
	R("IPC_RMID again", shmctl(id, IPC_RMID, NULL));
	R("IPC_STAT removed", shmctl(id, IPC_STAT, &d));
	R("shmget removed key", shmget(key_of(1), PG, 0600));
}

static void basics(void)
{
	printf("-- attach\n");
	int id = shmget(IPC_PRIVATE, 2 * PG + 100, 0640);
	struct shmid_ds d = st(id);
	printf("segsz %lu mode %o nattch %lu\n", (unsigned long)d.shm_segsz, d.shm_perm.mode, (unsigned long)d.shm_nattch);
	YN("cpid is me", d.shm_cpid == getpid());
	YN("lpid 0", d.shm_lpid == 0);
	YN("atime 0, dtime 0, ctime set", d.shm_atime == 0 && d.shm_dtime == 0 && d.shm_ctime != 0);
	YN("owner and creator are me", d.shm_perm.uid == getuid() && d.shm_perm.cuid == getuid() && d.shm_perm.gid == getgid());
	char *a;
	R("shmat", a = shmat(id, NULL, 0));
	YN("page aligned", ((uintptr_t)a & (PG - 1)) == 0);
	YN("reads zero", a[0] == 0 && a[2 * PG + 99] == 0);
	strcpy(a, "first attach");
	a[2 * PG + 50] = 'z';
	char *b;
	R("second shmat", b = shmat(id, NULL, 0));
	YN("different address", a != b);
	YN("second sees data", strcmp(b, "first attach") == 0 && b[2 * PG + 50] == 'z');
	b[1] = 'X';
	YN("first sees second's write", a[1] == 'X');
	d = st(id);
	printf("nattch %lu\n", (unsigned long)d.shm_nattch);
	YN("lpid is me, atime set", d.shm_lpid == getpid() && d.shm_atime != 0);
	R("shmdt second", shmdt(b));
	R("shmdt second again", shmdt(b));
	d = st(id);
	printf("nattch after shmdt %lu\n", (unsigned long)d.shm_nattch);
	YN("dtime set", d.shm_dtime != 0);
	/* The tail of the last page is in the mapping. */
	a[3 * PG - 1] = 1;
	YN("last page tail writable", a[3 * PG - 1] == 1);

	/* munmap splits: shmdt still finds the pieces. */
	R("munmap middle page", munmap(a + PG, PG));
	printf("nattch after split %lu\n", nattch(id));
	R("shmdt split attach", shmdt(a));
	printf("nattch after shmdt of pieces %lu\n", nattch(id));

	/* IPC_SET changes owner ids and mode bits only. */
	d = st(id);
	d.shm_perm.mode = 0604 | 0170000;
	d.shm_perm.gid = 55;
	R("IPC_SET", shmctl(id, IPC_SET, &d));
	d = st(id);
	printf("mode after IPC_SET %o gid %u\n", d.shm_perm.mode, d.shm_perm.gid);
	YN("cgid unchanged", d.shm_perm.cgid == getgid());
	shmctl(id, IPC_RMID, NULL);
}

static void forked(void)
{
	printf("-- fork\n");
	int id = shmget(IPC_PRIVATE, 4 * PG, 0600);
	volatile int *p = shmat(id, NULL, 0);
	/* Page 0 touched before fork, page 2 only after. */
	p[0] = 1;
	pid_t c = fork();
	if (c == 0) {
		printf("child sees parent's write: %s\n", p[0] == 1 ? "yes" : "no");
		printf("nattch in child %lu\n", nattch(id));
		p[0] = 2;
		p[2 * PG / sizeof(int)] = 42;
		char *q = shmat(id, NULL, SHM_RDONLY);
		printf("child's own attach sees it: %s\n", q[2 * PG] == 42 ? "yes" : "no");
		fflush(stdout);
		_exit(0);
	}
	int s;
	waitpid(c, &s, 0);
	YN("child exited", WIFEXITED(s) && WEXITSTATUS(s) == 0);
	YN("parent sees child's writes", p[0] == 2 && p[2 * PG / sizeof(int)] == 42);
	printf("nattch after child exit %lu\n", nattch(id));
	struct shmid_ds d = st(id);
	YN("lpid is the child", d.shm_lpid == c);

	/* Pages first touched by the child, after fork. */
	p = shmat(id, NULL, 0);
	c = fork();
	if (c == 0) {
		p[3 * PG / sizeof(int)] = 7;
		_exit(0);
	}
	waitpid(c, &s, 0);
	YN("untouched page shared after fork", p[3 * PG / sizeof(int)] == 7);
	shmctl(id, IPC_RMID, NULL);
	printf("nattch after IPC_RMID %lu\n", nattch(id));
	shmdt((void *)p);
	R("IPC_STAT with one attach left", shmctl(id, IPC_STAT, &d));
}

static void deferred_removal(void)
{
	printf("-- removal\n");
	int id = shmget(key_of(2), PG, IPC_CREAT | 0600);
	char *a = shmat(id, NULL, 0);
	a[0] = 'k';
	R("IPC_RMID attached", shmctl(id, IPC_RMID, NULL));
	struct shmid_ds d = st(id);
	printf("mode %o nattch %lu\n", d.shm_perm.mode, (unsigned long)d.shm_nattch);
	YN("key is now IPC_PRIVATE", d.shm_perm.__key == IPC_PRIVATE);
	R("shmget by old key", shmget(key_of(2), PG, 0600));
	int id2 = shmget(key_of(2), PG, IPC_CREAT | 0600);
	YN("key reusable at once", id2 >= 0 && id2 != id);
	char *b;
	R("shmat after IPC_RMID", b = shmat(id, NULL, 0));
	YN("same pages", b != (char *)-1 && b[0] == 'k');
	printf("nattch %lu\n", nattch(id));
	R("IPC_SET after IPC_RMID", shmctl(id, IPC_SET, &d));
	R("shmdt one", shmdt(a));
	R("IPC_STAT still there", shmctl(id, IPC_STAT, &d));
	R("shmdt last", shmdt(b));
	R("IPC_STAT gone", shmctl(id, IPC_STAT, &d));
	shmctl(id2, IPC_RMID, NULL);

	/* Exit detaches, and the last detach destroys. */
	id = shmget(IPC_PRIVATE, PG, 0600);
	pid_t c = fork();
	if (c == 0) {
		shmat(id, NULL, 0);
		shmctl(id, IPC_RMID, NULL);
		_exit(0);
	}
	int s;
	waitpid(c, &s, 0);
	R("IPC_STAT after attached child exit", shmctl(id, IPC_STAT, &d));
}

static void flags(void)
{
	printf("-- flags\n");
	int id = shmget(IPC_PRIVATE, 2 * PG, 0600);
	char *w = shmat(id, NULL, 0);
	strcpy(w, "shared");
	char *r;
	R("SHM_RDONLY", r = shmat(id, NULL, SHM_RDONLY));
	YN("read-only attach reads", strcmp(r, "shared") == 0);
	R("mprotect read-only attach writable", mprotect(r, PG, PROT_READ | PROT_WRITE));
	R("mprotect read-only attach PROT_NONE", mprotect(r, PG, PROT_NONE));
	R("mprotect back to read", mprotect(r, PG, PROT_READ));
	pid_t c = fork();
	if (c == 0) {
		r[0] = 'x';
		_exit(0);
	}
	int s;
	waitpid(c, &s, 0);
	YN("write to read-only attach is SIGSEGV", WIFSIGNALED(s) && WTERMSIG(s) == SIGSEGV);
	R("mprotect rw attach read-only", mprotect(w, PG, PROT_READ));
	R("mprotect rw attach back", mprotect(w, PG, PROT_READ | PROT_WRITE));
	shmdt(r);

	/* A free range to attach at. */
	char *hole = mmap(NULL, 8 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	munmap(hole, 8 * PG);
	R("unaligned without SHM_RND", shmat(id, hole + 123, 0));
	char *at = shmat(id, hole + 123, SHM_RND);
	YN("SHM_RND rounds down", at == hole);
	YN("fixed attach sees data", at != (char *)-1 && strcmp(at, "shared") == 0);
	R("overlapping attach", shmat(id, hole + PG, 0));
	char *re = shmat(id, hole + PG, SHM_REMAP);
	YN("SHM_REMAP replaces", re == hole + PG);
	printf("nattch %lu\n", nattch(id));
	YN("first attach cut short still reads", hole[0] == 's');
	shmdt(hole);
	shmdt(hole + PG);
	char *m = mmap(hole, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	R("SHM_REMAP over an ordinary mapping", shmat(id, m, SHM_REMAP));
	YN("mapping replaced", m[0] == 's');
	shmdt(m);
	R("attach past the end of user space", shmat(id, (void *)0x7ffffffff000UL, 0));
	R("SHM_EXEC", shmat(id, NULL, SHM_EXEC | SHM_RDONLY));
	printf("nattch %lu\n", nattch(id));
	shmdt(w);
	shmctl(id, IPC_RMID, NULL);
}

static void locks_and_info(void)
{
	printf("-- lock and info\n");
	int id = shmget(IPC_PRIVATE, PG, 0600);
	R("SHM_LOCK", shmctl(id, SHM_LOCK, NULL));
	struct shmid_ds d = st(id);
	printf("mode after SHM_LOCK %o\n", d.shm_perm.mode);
	R("SHM_UNLOCK", shmctl(id, SHM_UNLOCK, NULL));
	R("SHM_UNLOCK again", shmctl(id, SHM_UNLOCK, NULL));
	d = st(id);
	printf("mode after SHM_UNLOCK %o\n", d.shm_perm.mode);
	R("SHM_LOCK unknown id", shmctl(id + 1000000, SHM_LOCK, NULL));

	struct shminfo si;
	long maxidx = shmctl(0, IPC_INFO, (struct shmid_ds *)&si);
	YN("IPC_INFO returns an index", maxidx >= 0);
	unsigned long mni = 0, max = 0, all = 0;
	FILE *f = fopen("/proc/sys/kernel/shmmni", "r");
	if (f) {
		fscanf(f, "%lu", &mni);
		fclose(f);
	}
	f = fopen("/proc/sys/kernel/shmmax", "r");
	if (f) {
		fscanf(f, "%lu", &max);
		fclose(f);
	}
	f = fopen("/proc/sys/kernel/shmall", "r");
	if (f) {
		fscanf(f, "%lu", &all);
		fclose(f);
	}
	YN("shminfo matches /proc/sys/kernel", si.shmmni == mni && si.shmmax == max && si.shmall == all);
	printf("shmmin %lu shmseg==shmmni %s\n", si.shmmin, si.shmseg == si.shmmni ? "yes" : "no");
	struct shm_info sinfo;
	memset(&sinfo, 0, sizeof sinfo);
	long r = shmctl(0, SHM_INFO, (struct shmid_ds *)&sinfo);
	YN("SHM_INFO counts ours", r >= 0 && sinfo.used_ids >= 1 && sinfo.shm_tot >= 1);
	int found = 0;
	for (long i = 0; i <= r; i++) {
		struct shmid_ds x;
		if (shmctl(i, SHM_STAT, &x) == id)
			found = 1;
	}
	YN("SHM_STAT finds it by index", found);
	R("SHM_STAT index -5", shmctl(-5, SHM_STAT, &d));
	YN("SHM_STAT_ANY returns the id", shmctl(id & 0x7fff, SHM_STAT_ANY, &d) == id);

	/* /proc/sysvipc/shm: the fixed header, and our segment. */
	f = fopen("/proc/sysvipc/shm", "r");
	char line[512];
	found = 0;
	if (f && fgets(line, sizeof line, f)) {
		printf("header: %s", line);
		while (fgets(line, sizeof line, f)) {
			int k, sid;
			unsigned perms;
			unsigned long size;
			if (sscanf(line, "%d %d %o %lu", &k, &sid, &perms, &size) == 4 && sid == id)
				found = printf("listed: perms %o size %lu\n", perms, size) > 0;
		}
	}
	if (f)
		fclose(f);
	YN("listed in /proc/sysvipc/shm", found);
	shmctl(id, IPC_RMID, NULL);
	f = fopen("/proc/sysvipc/shm", "r");
	found = 0;
	while (f && fgets(line, sizeof line, f)) {
		int k, sid;
		if (sscanf(line, "%d %d", &k, &sid) == 2 && sid == id)
			found = 1;
	}
	if (f)
		fclose(f);
	YN("gone from /proc/sysvipc/shm", !found);
}

static void maps(void)
{
	printf("-- maps\n");
	key_t k = key_of(3);
	int id = shmget(k, PG, IPC_CREAT | 0600);
	char *a = shmat(id, NULL, 0);
	char want[64], line[512];
	snprintf(want, sizeof want, "/SYSV%08x (deleted)", (unsigned)k);
	FILE *f = fopen("/proc/self/maps", "r");
	int found = 0;
	while (f && fgets(line, sizeof line, f)) {
		unsigned long lo, hi, off, ino;
		char perms[8], dev[16];
		if (sscanf(line, "%lx-%lx %7s %lx %15s %lu", &lo, &hi, perms, &off, dev, &ino) == 6 && lo == (unsigned long)a) {
			found = 1;
			printf("perms %s offset %lx size %lu\n", perms, off, hi - lo);
			YN("inode is the shmid", ino == (unsigned long)id);
			YN("named /SYSV<key> (deleted)", strstr(line, want) != NULL);
		}
	}
	if (f)
		fclose(f);
	YN("attach in /proc/self/maps", found);
	shmdt(a);
	shmctl(id, IPC_RMID, NULL);
}

static void unprivileged(void)
{
	printf("-- permissions\n");
	int id = shmget(key_of(4), PG, IPC_CREAT | 0600);
	int ro = shmget(IPC_PRIVATE, PG, 0604);
	int none = shmget(IPC_PRIVATE, PG, 0);
	char *p;
	R("root attaches a mode 0 segment", p = shmat(none, NULL, 0));
	shmdt(p);
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		if (drop_privileges()) {
			printf("cannot drop privileges\n");
			_exit(1);
		}
		struct shmid_ds d;
		memset(&d, 0, sizeof d);
		R("shmget without access bits", shmget(key_of(4), 0, 0));
		R("shmget asking rw", shmget(key_of(4), 0, 0600));
		R("shmat", shmat(id, NULL, 0));
		R("shmat read-only", shmat(id, NULL, SHM_RDONLY));
		R("IPC_STAT", shmctl(id, IPC_STAT, &d));
		YN("SHM_STAT_ANY", shmctl(id & 0x7fff, SHM_STAT_ANY, &d) == id);
		R("SHM_STAT", shmctl(id & 0x7fff, SHM_STAT, &d));
		R("IPC_SET", shmctl(id, IPC_SET, &d));
		R("IPC_RMID", shmctl(id, IPC_RMID, NULL));
		R("SHM_LOCK", shmctl(id, SHM_LOCK, NULL));
		R("SHM_UNLOCK", shmctl(id, SHM_UNLOCK, NULL));
		R("other-readable shmat read-only", shmat(ro, NULL, SHM_RDONLY));
		R("other-readable shmat rw", shmat(ro, NULL, 0));
		/* An owner without CAP_IPC_LOCK may lock within RLIMIT_MEMLOCK. */
		int mine = shmget(IPC_PRIVATE, PG, 0600);
		R("owner SHM_LOCK", shmctl(mine, SHM_LOCK, NULL));
		R("owner SHM_UNLOCK", shmctl(mine, SHM_UNLOCK, NULL));
		R("owner IPC_RMID", shmctl(mine, IPC_RMID, NULL));
		fflush(stdout);
		_exit(0);
	}
	int s;
	waitpid(c, &s, 0);
	YN("child done", WIFEXITED(s) && WEXITSTATUS(s) == 0);
	shmctl(id, IPC_RMID, NULL);
	shmctl(ro, IPC_RMID, NULL);
	shmctl(none, IPC_RMID, NULL);
}

static void exec_detaches(char *self)
{
	printf("-- exec\n");
	int id = shmget(IPC_PRIVATE, PG, 0600);
	shmat(id, NULL, 0);
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		char arg[32];
		snprintf(arg, sizeof arg, "%d", id);
		shmat(id, NULL, 0);
		execl(self, "ipc_shm", "exec-check", arg, (char *)NULL);
		_exit(127);
	}
	int s;
	waitpid(c, &s, 0);
	printf("nattch after the child's exit %lu\n", nattch(id));
	shmctl(id, IPC_RMID, NULL);
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "exec-check") == 0) {
		/* Only the parent's attach is left: exec dropped this process's two. */
		printf("nattch after exec %lu\n", nattch(atoi(argv[2])));
		return 0;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	key_base = getpid() & 0xffff;
	errors();
	basics();
	forked();
	deferred_removal();
	flags();
	locks_and_info();
	maps();
	unprivileged();
	exec_detaches("/proc/self/exe");
	return 0;
}
