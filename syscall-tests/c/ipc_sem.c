/* System V semaphores: semget/semop/semtimedop/semctl. Values, all-or-
 * nothing multi-op semops, a semaphore as a mutex between processes,
 * blocking and waking (GETNCNT/GETZCNT while a child sleeps), EIDRM on
 * removal, EINTR on a signal (with or without SA_RESTART), timeouts,
 * SEM_UNDO on exit, permissions as an unprivileged child, the info and
 * index-based stat commands, /proc/sysvipc/sem, and errno for bad
 * arguments and bad pointers. Prints no ids, keys, pids or times. */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/sem.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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
	case ENOSYS: return "ENOSYS";
	default: return "E?";
	}
}

#define R(what, expr)                                                 \
	do {                                                          \
		errno = 0;                                            \
		long r_ = (long)(expr);                               \
		printf("%s: %s\n", what, r_ == -1 ? en(errno) : "ok"); \
	} while (0)

/* Prints a call's value, or its errno name. */
#define V(what, expr)                                            \
	do {                                                     \
		errno = 0;                                       \
		long r_ = (long)(expr);                          \
		if (r_ == -1)                                    \
			printf("%s: %s\n", what, en(errno));     \
		else                                             \
			printf("%s: %ld\n", what, r_);           \
	} while (0)

#define YN(what, cond) printf("%s: %s\n", what, (cond) ? "yes" : "no")

union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
	struct seminfo *__buf;
};

/* Raw calls, so the kernel sees exactly these arguments. */
static long k_semctl(int id, int num, int cmd, unsigned long arg)
{
	return syscall(SYS_semctl, id, num, cmd, arg);
}
static long k_semop(int id, void *sops, unsigned n)
{
	return syscall(SYS_semop, id, sops, n);
}
static long k_semtimedop(int id, void *sops, unsigned n, void *ts)
{
	return syscall(SYS_semtimedop, id, sops, n, ts);
}

static int key_base;
static key_t key_of(int n)
{
	return (key_t)(0x5f000000 | (key_base << 8) | n);
}

static long getval(int id, int n)
{
	return semctl(id, n, GETVAL);
}

static int op(int id, int num, int o, int flg)
{
	struct sembuf b = { (unsigned short)num, (short)o, (short)flg };
	return semop(id, &b, 1);
}

static void ms(int n)
{
	struct timespec t = { n / 1000, (n % 1000) * 1000000L };
	nanosleep(&t, NULL);
}

/* Waits (up to ~5 s) until `n` tasks sleep on semaphore `num` (GETNCNT, or GETZCNT). */
static int wait_sleepers(int id, int num, int cmd, int n)
{
	for (int i = 0; i < 500; i++) {
		if (semctl(id, num, cmd) == n)
			return 1;
		ms(10);
	}
	return 0;
}

static int drop_privileges(void)
{
	gid_t g = 1000;
	return setgroups(1, &g) || setgid(1000) || setuid(1000);
}

static void errors(void)
{
	printf("-- errors\n");
	R("semget nsems 0", semget(IPC_PRIVATE, 0, 0600));
	R("semget nsems -1", semget(IPC_PRIVATE, -1, 0600));
	R("semget nsems 32001", semget(IPC_PRIVATE, 32001, 0600));
	R("semget unknown key", semget(key_of(1), 1, 0600));
	int id;
	R("semget create", id = semget(key_of(1), 3, IPC_CREAT | 0600));
	R("semget IPC_EXCL", semget(key_of(1), 1, IPC_CREAT | IPC_EXCL | 0600));
	R("semget more sems", semget(key_of(1), 4, 0600));
	YN("semget fewer sems same id", semget(key_of(1), 2, 0600) == id);
	YN("semget nsems 0 same id", semget(key_of(1), 0, 0) == id);

	struct sembuf b[2] = { { 0, 1, 0 }, { 3, 1, 0 } };
	R("semop nsops 0", k_semop(id, b, 0));
	R("semop nsops 501", k_semop(id, b, 501));
	R("semop sem_num past the set", k_semop(id, &b[1], 1));
	R("semop bad pointer", k_semop(id, BAD, 1));
	R("semop id -1", k_semop(-1, b, 1));
	R("semop unknown id", k_semop(id + 1000000, b, 1));
	R("semop nsops 501 bad pointer", k_semop(id, BAD, 501));
	struct timespec ts = { 0, 2000000000L };
	R("semtimedop bad nsec", k_semtimedop(id, b, 1, &ts));
	ts.tv_sec = -1;
	ts.tv_nsec = 0;
	R("semtimedop negative sec", k_semtimedop(id, b, 1, &ts));
	R("semtimedop bad timeout pointer", k_semtimedop(id, b, 1, BAD));
	R("semtimedop bad timeout, nsops 0", k_semtimedop(id, b, 0, BAD));

	R("semctl id -1", k_semctl(-1, 0, GETVAL, 0));
	R("semctl id -1 IPC_INFO", k_semctl(-1, 0, IPC_INFO, 0));
	R("semctl cmd 99", k_semctl(id, 0, 99, 0));
	R("semctl cmd -1", k_semctl(id, 0, -1, 0));
	R("GETVAL semnum 3", k_semctl(id, 3, GETVAL, 0));
	R("GETVAL semnum -1", k_semctl(id, -1, GETVAL, 0));
	R("SETVAL semnum 3", k_semctl(id, 3, SETVAL, 1));
	R("SETVAL 32768", k_semctl(id, 0, SETVAL, 32768));
	R("SETVAL -1", k_semctl(id, 0, SETVAL, (unsigned)-1));
	R("SETVAL 32768 unknown id", k_semctl(id + 1000000, 0, SETVAL, 32768));
	R("SETVAL 32767", k_semctl(id, 0, SETVAL, 32767));
	R("semop past SEMVMX", op(id, 0, 1, 0));
	R("SETVAL high bits ignored", k_semctl(id, 0, SETVAL, 0x500000002UL));
	V("GETVAL", getval(id, 0));
	R("IPC_STAT bad pointer", k_semctl(id, 0, IPC_STAT, 8));
	R("IPC_SET bad pointer", k_semctl(id, 0, IPC_SET, 8));
	R("GETALL bad pointer", k_semctl(id, 0, GETALL, 8));
	R("SETALL bad pointer", k_semctl(id, 0, SETALL, 8));
	R("IPC_INFO bad pointer", k_semctl(0, 0, IPC_INFO, 8));
	R("SEM_INFO bad pointer", k_semctl(0, 0, SEM_INFO, 8));
	unsigned short big[3] = { 1, 40000, 2 };
	R("SETALL 40000", semctl(id, 0, SETALL, (union semun){ .array = big }));
	unsigned short vals[3] = { 0 };
	semctl(id, 0, GETALL, (union semun){ .array = vals });
	printf("after failed SETALL: %u %u %u\n", vals[0], vals[1], vals[2]);
	struct semid_ds d;
	semctl(id, 0, IPC_STAT, (union semun){ .buf = &d });
	d.sem_perm.gid = (gid_t)-1;
	R("IPC_SET gid -1", semctl(id, 0, IPC_SET, (union semun){ .buf = &d }));
	R("IPC_RMID", semctl(id, 0, IPC_RMID));
	R("IPC_RMID again", semctl(id, 0, IPC_RMID));
	R("GETVAL removed", semctl(id, 0, GETVAL));
	R("semop removed", op(id, 0, 1, 0));
}

static void values(void)
{
	printf("-- values\n");
	int id = semget(IPC_PRIVATE, 3, 0640);
	struct semid_ds d;
	semctl(id, 0, IPC_STAT, (union semun){ .buf = &d });
	printf("nsems %lu mode %o\n", (unsigned long)d.sem_nsems, d.sem_perm.mode);
	YN("otime 0, ctime set", d.sem_otime == 0 && d.sem_ctime != 0);
	YN("owner and creator are me", d.sem_perm.uid == getuid() && d.sem_perm.cuid == getuid());
	V("GETVAL fresh", getval(id, 2));
	V("GETPID fresh", semctl(id, 0, GETPID));
	unsigned short set[3] = { 4, 0, 9 }, got[3] = { 0 };
	R("SETALL", semctl(id, 0, SETALL, (union semun){ .array = set }));
	R("GETALL", semctl(id, 0, GETALL, (union semun){ .array = got }));
	printf("values %u %u %u\n", got[0], got[1], got[2]);
	YN("GETPID is me after SETALL", semctl(id, 1, GETPID) == getpid());
	R("SETVAL", semctl(id, 1, SETVAL, 7));
	V("GETVAL", getval(id, 1));
	R("decrement", op(id, 0, -3, 0));
	V("GETVAL", getval(id, 0));
	R("decrement too far, IPC_NOWAIT", op(id, 0, -2, IPC_NOWAIT));
	R("wait for zero, IPC_NOWAIT", op(id, 0, 0, IPC_NOWAIT));
	semctl(id, 0, IPC_STAT, (union semun){ .buf = &d });
	YN("otime set by semop", d.sem_otime != 0);

	/* All or nothing: the first op must not stick when the second blocks. */
	struct sembuf two[2] = { { 0, -1, 0 }, { 1, -8, IPC_NOWAIT } };
	R("two ops, second would block", semop(id, two, 2));
	V("first unchanged", getval(id, 0));
	struct sembuf range[2] = { { 2, -1, 0 }, { 1, 32767, 0 } };
	R("two ops, second out of range", semop(id, range, 2));
	V("first unchanged", getval(id, 2));
	/* Operations on one semaphore apply in order. */
	struct sembuf seq[3] = { { 1, -7, 0 }, { 1, 0, IPC_NOWAIT }, { 1, 5, 0 } };
	R("take, wait for zero, give", semop(id, seq, 3));
	V("after", getval(id, 1));
	struct sembuf zero_then_take[2] = { { 0, 0, IPC_NOWAIT }, { 0, -1, 0 } };
	R("zero then take on a non-zero", semop(id, zero_then_take, 2));
	struct sembuf ok3[3] = { { 0, -1, 0 }, { 1, -1, 0 }, { 2, -1, 0 } };
	R("three decrements", semop(id, ok3, 3));
	semctl(id, 0, GETALL, (union semun){ .array = got });
	printf("values %u %u %u\n", got[0], got[1], got[2]);
	struct timespec ts = { 0, 50000000 };
	struct sembuf block = { 1, -10, 0 };
	R("semtimedop timeout", semtimedop(id, &block, 1, &ts));
	ts.tv_nsec = 0;
	R("semtimedop zero timeout", semtimedop(id, &block, 1, &ts));
	block.sem_op = -1;
	R("semtimedop that can proceed", semtimedop(id, &block, 1, &ts));
	semctl(id, 0, IPC_RMID);
}

static void mutex(void)
{
	printf("-- mutex\n");
	int id = semget(IPC_PRIVATE, 1, 0600);
	semctl(id, 0, SETVAL, 1);
	volatile long *counter = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	counter[0] = 0;
	counter[1] = 0;
	enum { KIDS = 3, ROUNDS = 200 };
	pid_t kids[KIDS];
	for (int k = 0; k < KIDS; k++) {
		kids[k] = fork();
		if (kids[k] == 0) {
			for (int i = 0; i < ROUNDS; i++) {
				if (op(id, 0, -1, SEM_UNDO) != 0)
					_exit(2);
				long v = counter[0];
				if (counter[1]++ != 0)
					_exit(3);
				if (i % 16 == 0)
					sched_yield();
				counter[0] = v + 1;
				counter[1]--;
				if (op(id, 0, 1, SEM_UNDO) != 0)
					_exit(4);
			}
			_exit(0);
		}
	}
	int bad = 0;
	for (int k = 0; k < KIDS; k++) {
		int s;
		waitpid(kids[k], &s, 0);
		if (!WIFEXITED(s) || WEXITSTATUS(s) != 0)
			bad++;
	}
	printf("children failed: %d\n", bad);
	printf("counter %ld (want %d)\n", counter[0], KIDS * ROUNDS);
	V("value after", getval(id, 0));
	semctl(id, 0, IPC_RMID);
}

static void sleepers(void)
{
	printf("-- sleeping\n");
	int id = semget(IPC_PRIVATE, 2, 0600);
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		/* Sleeps for both; the count shows the one that blocks it. */
		struct sembuf both[2] = { { 0, -1, 0 }, { 1, -1, 0 } };
		_exit(semop(id, both, 2) == 0 ? 0 : 10 + errno);
	}
	YN("child sleeps on sem 0", wait_sleepers(id, 0, GETNCNT, 1));
	V("GETNCNT sem 1", semctl(id, 1, GETNCNT));
	op(id, 0, 1, 0);
	YN("then on sem 1", wait_sleepers(id, 1, GETNCNT, 1));
	V("GETNCNT sem 0", semctl(id, 0, GETNCNT));
	V("sem 0 still", getval(id, 0));
	op(id, 1, 1, 0);
	int s;
	waitpid(c, &s, 0);
	printf("child status %d\n", WIFEXITED(s) ? WEXITSTATUS(s) : -1);
	YN("GETPID is the child", semctl(id, 0, GETPID) == c && semctl(id, 1, GETPID) == c);
	printf("values %ld %ld\n", getval(id, 0), getval(id, 1));

	/* Waiting for zero. */
	semctl(id, 0, SETVAL, 2);
	c = fork();
	if (c == 0)
		_exit(op(id, 0, 0, 0) == 0 ? 0 : 10 + errno);
	YN("child waits for zero", wait_sleepers(id, 0, GETZCNT, 1));
	V("GETNCNT meanwhile", semctl(id, 0, GETNCNT));
	op(id, 0, -1, 0);
	ms(50);
	V("GETZCNT at 1", semctl(id, 0, GETZCNT));
	semctl(id, 0, SETVAL, 0);
	waitpid(c, &s, 0);
	printf("child status %d\n", WIFEXITED(s) ? WEXITSTATUS(s) : -1);

	/* Sleepers are served in order: the big request first. */
	c = fork();
	if (c == 0)
		_exit(op(id, 0, -3, 0) == 0 ? 0 : 10 + errno);
	wait_sleepers(id, 0, GETNCNT, 1);
	pid_t c2 = fork();
	if (c2 == 0)
		_exit(op(id, 0, -1, 0) == 0 ? 0 : 10 + errno);
	YN("two sleepers", wait_sleepers(id, 0, GETNCNT, 2));
	op(id, 0, 1, 0);
	ms(50);
	V("one is not enough for the first; the second took it: ncnt", semctl(id, 0, GETNCNT));
	op(id, 0, 3, 0);
	waitpid(c, &s, 0);
	printf("first status %d\n", WIFEXITED(s) ? WEXITSTATUS(s) : -1);
	waitpid(c2, &s, 0);
	printf("second status %d\n", WIFEXITED(s) ? WEXITSTATUS(s) : -1);
	V("left", getval(id, 0));

	/* Removal wakes sleepers with EIDRM. */
	c = fork();
	if (c == 0)
		_exit(op(id, 1, -1, 0) == 0 ? 0 : 10 + errno);
	wait_sleepers(id, 1, GETNCNT, 1);
	semctl(id, 0, IPC_RMID);
	waitpid(c, &s, 0);
	printf("after IPC_RMID child got %s\n", WIFEXITED(s) && WEXITSTATUS(s) >= 10 ? en(WEXITSTATUS(s) - 10) : "nothing");
}

static void on_alarm(int sig)
{
	(void)sig;
}

static void signals(void)
{
	printf("-- signals\n");
	int id = semget(IPC_PRIVATE, 1, 0600);
	for (int restart = 0; restart < 2; restart++) {
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_alarm;
		sa.sa_flags = restart ? SA_RESTART : 0;
		sigaction(SIGALRM, &sa, NULL);
		struct itimerval it = { { 0, 0 }, { 0, 100000 } };
		setitimer(ITIMER_REAL, &it, NULL);
		R(restart ? "semop with SA_RESTART handler" : "semop with handler", op(id, 0, -1, 0));
		V("GETNCNT after", semctl(id, 0, GETNCNT));
	}
	struct timespec ts = { 5, 0 };
	struct sembuf b = { 0, -1, 0 };
	struct itimerval it = { { 0, 0 }, { 0, 100000 } };
	setitimer(ITIMER_REAL, &it, NULL);
	R("semtimedop interrupted", semtimedop(id, &b, 1, &ts));
	signal(SIGALRM, SIG_DFL);
	semctl(id, 0, IPC_RMID);
}

static void undo(void)
{
	printf("-- undo\n");
	int id = semget(IPC_PRIVATE, 2, 0600);
	semctl(id, 0, SETVAL, 5);
	pid_t c = fork();
	if (c == 0) {
		struct sembuf b[2] = { { 0, -2, SEM_UNDO }, { 1, 3, SEM_UNDO } };
		semop(id, b, 2);
		op(id, 0, -1, SEM_UNDO);
		op(id, 0, 1, 0);
		printf("child sees %ld %ld\n", getval(id, 0), getval(id, 1));
		fflush(stdout);
		_exit(0);
	}
	int s;
	waitpid(c, &s, 0);
	printf("after child exit %ld %ld\n", getval(id, 0), getval(id, 1));
	YN("GETPID is the child (undo)", semctl(id, 0, GETPID) == c);

	/* SETVAL clears adjustments. */
	semctl(id, 1, SETVAL, 3);
	c = fork();
	if (c == 0) {
		op(id, 1, -3, SEM_UNDO);
		op(id, 1, 3, 0);
		semctl(id, 1, SETVAL, 1);
		op(id, 1, 1, SEM_UNDO);
		_exit(0);
	}
	waitpid(c, &s, 0);
	V("SETVAL cleared the first adjustment", getval(id, 1));

	/* Undo is clamped at 0. */
	semctl(id, 1, SETVAL, 0);
	c = fork();
	if (c == 0) {
		op(id, 1, 2, SEM_UNDO);
		op(id, 1, -2, 0);
		_exit(0);
	}
	waitpid(c, &s, 0);
	V("undo clamped at 0", getval(id, 1));

	/* A sleeper is woken by an exiting process's undo. */
	semctl(id, 0, SETVAL, 1);
	semctl(id, 1, SETVAL, 0);
	c = fork();
	if (c == 0) {
		op(id, 0, -1, SEM_UNDO);
		op(id, 1, 1, 0);
		ms(100);
		_exit(0);
	}
	op(id, 1, -1, 0);
	R("parent takes it once the child exits", op(id, 0, -1, 0));
	waitpid(c, &s, 0);
	V("left", getval(id, 0));

	/* The adjustment's range. */
	semctl(id, 1, SETVAL, 0);
	struct sembuf b = { 1, 32767, SEM_UNDO };
	R("up 32767 with undo", semop(id, &b, 1));
	b = (struct sembuf){ 1, -32767, 0 };
	R("down without", semop(id, &b, 1));
	b = (struct sembuf){ 1, 1, SEM_UNDO };
	R("up 1 with undo (adjustment -32768)", semop(id, &b, 1));
	b = (struct sembuf){ 1, -1, 0 };
	R("down without", semop(id, &b, 1));
	b = (struct sembuf){ 1, 1, SEM_UNDO };
	R("up 1 with undo (adjustment -32769)", semop(id, &b, 1));
	semctl(id, 0, IPC_RMID);
}

static void unprivileged(void)
{
	printf("-- permissions\n");
	int id = semget(key_of(2), 1, IPC_CREAT | 0600);
	int ro = semget(IPC_PRIVATE, 1, 0604);
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		if (drop_privileges()) {
			printf("cannot drop privileges\n");
			_exit(1);
		}
		struct semid_ds d;
		memset(&d, 0, sizeof d);
		R("semget without access bits", semget(key_of(2), 0, 0));
		R("semget asking read", semget(key_of(2), 0, 0400));
		R("semop", op(id, 0, 1, 0));
		R("wait-for-zero semop", op(id, 0, 0, IPC_NOWAIT));
		R("GETVAL", semctl(id, 0, GETVAL));
		R("SETVAL", semctl(id, 0, SETVAL, 1));
		R("IPC_STAT", semctl(id, 0, IPC_STAT, (union semun){ .buf = &d }));
		YN("SEM_STAT_ANY", semctl(id & 0x7fff, 0, SEM_STAT_ANY, (union semun){ .buf = &d }) == id);
		R("SEM_STAT", semctl(id & 0x7fff, 0, SEM_STAT, (union semun){ .buf = &d }));
		R("IPC_SET", semctl(id, 0, IPC_SET, (union semun){ .buf = &d }));
		R("IPC_RMID", semctl(id, 0, IPC_RMID));
		R("readable: wait for zero", op(ro, 0, 0, IPC_NOWAIT));
		R("readable: GETVAL", semctl(ro, 0, GETVAL));
		R("readable: semop", op(ro, 0, 1, 0));
		R("readable: SETALL", semctl(ro, 0, SETALL, (union semun){ .array = (unsigned short[]){ 1 } }));
		fflush(stdout);
		_exit(0);
	}
	int s;
	waitpid(c, &s, 0);
	YN("child done", WIFEXITED(s) && WEXITSTATUS(s) == 0);
	semctl(id, 0, IPC_RMID);
	semctl(ro, 0, IPC_RMID);
}

static void info(void)
{
	printf("-- info\n");
	int id = semget(IPC_PRIVATE, 2, 0600);
	struct seminfo si;
	long maxidx = semctl(0, 0, IPC_INFO, (union semun){ .__buf = &si });
	YN("IPC_INFO returns an index", maxidx >= 0);
	long f[4] = { 0 };
	FILE *fp = fopen("/proc/sys/kernel/sem", "r");
	if (fp) {
		fscanf(fp, "%ld %ld %ld %ld", &f[0], &f[1], &f[2], &f[3]);
		fclose(fp);
	}
	YN("seminfo matches /proc/sys/kernel/sem", si.semmsl == f[0] && si.semmns == f[1] && si.semopm == f[2] && si.semmni == f[3]);
	printf("semvmx %d semaem %d semusz %d semume %d semmnu==semmap %s\n", si.semvmx, si.semaem, si.semusz, si.semume, si.semmnu == si.semmap ? "yes" : "no");
	long r = semctl(0, 0, SEM_INFO, (union semun){ .__buf = &si });
	YN("SEM_INFO counts ours", r >= 0 && si.semusz >= 1 && si.semaem >= 2);
	int found = 0;
	for (long i = 0; i <= r; i++) {
		struct semid_ds d;
		if (semctl(i, 0, SEM_STAT, (union semun){ .buf = &d }) == id)
			found = 1;
	}
	YN("SEM_STAT finds it by index", found);
	FILE *p = fopen("/proc/sysvipc/sem", "r");
	char line[512];
	found = 0;
	if (p && fgets(line, sizeof line, p)) {
		printf("header: %s", line);
		while (fgets(line, sizeof line, p)) {
			int k, sid;
			unsigned perms, nsems;
			if (sscanf(line, "%d %d %o %u", &k, &sid, &perms, &nsems) == 4 && sid == id)
				found = printf("listed: perms %o nsems %u\n", perms, nsems) > 0;
		}
	}
	if (p)
		fclose(p);
	YN("listed in /proc/sysvipc/sem", found);
	struct semid_ds d;
	semctl(id, 0, IPC_STAT, (union semun){ .buf = &d });
	d.sem_perm.mode = 0444;
	R("IPC_SET", semctl(id, 0, IPC_SET, (union semun){ .buf = &d }));
	semctl(id, 0, IPC_STAT, (union semun){ .buf = &d });
	printf("mode %o\n", d.sem_perm.mode);
	R("root semop on a read-only set", op(id, 0, 1, 0));
	semctl(id, 0, IPC_RMID);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	key_base = getpid() & 0xffff;
	errors();
	values();
	mutex();
	sleepers();
	signals();
	undo();
	unprivileged();
	info();
	return 0;
}
