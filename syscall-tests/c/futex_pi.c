/* PI futexes: pthread mutexes with PTHREAD_PRIO_INHERIT under contention
 * from 4 threads, trylock's EBUSY, a PI lock waited for across a signal
 * (never EINTR), robust mutexes (PI and not) whose owner dies with and
 * without a waiter (EOWNERDEAD, pthread_mutex_consistent), a process-
 * shared PI mutex between processes, and raw FUTEX_LOCK_PI/LOCK_PI2/
 * TRYLOCK_PI/UNLOCK_PI on the futex word: the TID, FUTEX_WAITERS and
 * hand-off to a waiter, EDEADLK, EPERM, ESRCH, EAGAIN, ETIMEDOUT, EINVAL,
 * EFAULT, ENOSYS; FUTEX_WAIT_REQUEUE_PI/CMP_REQUEUE_PI onto a free and
 * onto a held PI lock. Prints no TIDs, only comparisons with them. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef FUTEX_LOCK_PI2
#define FUTEX_LOCK_PI2 13
#endif
#define TID_MASK 0x3fffffffu
#define NOBODY 0x3ffffff0u

static const char *en(int e)
{
	switch (e) {
	case 0: return "ok";
	case EPERM: return "EPERM";
	case ESRCH: return "ESRCH";
	case EINTR: return "EINTR";
	case EAGAIN: return "EAGAIN";
	case EFAULT: return "EFAULT";
	case EBUSY: return "EBUSY";
	case EINVAL: return "EINVAL";
	case EDEADLK: return "EDEADLK";
	case ENOSYS: return "ENOSYS";
	case ETIMEDOUT: return "ETIMEDOUT";
	case EOWNERDEAD: return "EOWNERDEAD";
	case ENOTRECOVERABLE: return "ENOTRECOVERABLE";
	default: return "E?";
	}
}

static long fx(uint32_t *uaddr, int op, const struct timespec *ts)
{
	return syscall(SYS_futex, uaddr, op, 0, ts, NULL, 0);
}

#define F(what, expr)                                                  \
	do {                                                           \
		errno = 0;                                             \
		long r_ = (expr);                                      \
		printf("%s: %s\n", what, r_ == -1 ? en(errno) : "ok"); \
	} while (0)

static struct timespec after_ms(clockid_t c, long ms)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	ts.tv_nsec += ms * 1000000L;
	while (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

/* ---- contention through glibc ---- */

static pthread_mutex_t pim;
static long counter;
#define ROUNDS 20000

static void *counting(void *arg)
{
	(void)arg;
	for (int i = 0; i < ROUNDS; i++) {
		pthread_mutex_lock(&pim);
		long c = counter;
		if (i % 1000 == 0)
			sched_yield(); /* hold it across a switch: others queue */
		counter = c + 1;
		pthread_mutex_unlock(&pim);
	}
	return NULL;
}

static void *try_other(void *arg)
{
	(void)arg;
	int r = pthread_mutex_trylock(&pim);
	if (r == 0)
		pthread_mutex_unlock(&pim);
	return (void *)(long)r;
}

/* ---- raw words ---- */

static uint32_t word;
static volatile int holder_tid;
static volatile int release;

static void *raw_holder(void *arg)
{
	long hold_ms = (long)arg;
	holder_tid = gettid();
	if (fx(&word, FUTEX_LOCK_PI_PRIVATE, NULL) != 0)
		printf("holder lock failed: %s\n", en(errno));
	while (!release)
		usleep(1000);
	usleep(hold_ms * 1000);
	if (fx(&word, FUTEX_UNLOCK_PI_PRIVATE, NULL) != 0)
		printf("holder unlock failed: %s\n", en(errno));
	return NULL;
}

/* ---- requeue to PI ---- */

static uint32_t cond, pil;

struct rq {
	pthread_t th;
	int err, owned, asleep;
};

static long rqwait(uint32_t *c, uint32_t val, const struct timespec *ts, uint32_t *pi)
{
	return syscall(SYS_futex, c, FUTEX_WAIT_REQUEUE_PI_PRIVATE, val, ts, pi, 0);
}

static long cmp_requeue(uint32_t *c, int nr_wake, int nr_requeue, uint32_t *pi, uint32_t val3)
{
	return syscall(SYS_futex, c, FUTEX_CMP_REQUEUE_PI_PRIVATE, nr_wake, (void *)(long)nr_requeue, pi, val3);
}

static void *requeue_waiter(void *arg)
{
	struct rq *q = arg;
	q->asleep = 1;
	errno = 0;
	long r = rqwait(&cond, 0, NULL, &pil);
	q->err = r == -1 ? errno : 0;
	q->owned = (pil & TID_MASK) == (uint32_t)gettid();
	if (r == 0)
		fx(&pil, FUTEX_UNLOCK_PI_PRIVATE, NULL);
	return NULL;
}

static void requeue_tests(void)
{
	cond = 1;
	pil = 0;
	F("WAIT_REQUEUE_PI value changed", rqwait(&cond, 0, NULL, &pil));
	F("WAIT_REQUEUE_PI same futex", rqwait(&cond, 1, NULL, &cond));
	struct timespec mono = after_ms(CLOCK_MONOTONIC, 50);
	F("WAIT_REQUEUE_PI timeout", rqwait(&cond, 1, &mono, &pil));
	cond = 0;
	F("CMP_REQUEUE_PI nr_wake 2", cmp_requeue(&cond, 2, 0, &pil, 0));
	F("CMP_REQUEUE_PI value changed", cmp_requeue(&cond, 1, 0, &pil, 5));
	errno = 0;
	printf("CMP_REQUEUE_PI nobody: %ld\n", cmp_requeue(&cond, 1, 0, &pil, 0));

	/* The lock is free: the waiter takes it. */
	struct rq a = {0}, b = {0};
	pthread_create(&a.th, NULL, requeue_waiter, &a);
	while (!a.asleep)
		usleep(1000);
	usleep(50000);
	printf("CMP_REQUEUE_PI free lock: %ld\n", cmp_requeue(&cond, 1, 0, &pil, 0));
	pthread_join(a.th, NULL);
	printf("waiter: %s, owned it: %d, word after: %#x\n", en(a.err), a.owned, pil);

	/* The lock is held: both waiters queue on it, then get it in turn. */
	F("LOCK_PI", fx(&pil, FUTEX_LOCK_PI_PRIVATE, NULL));
	a = (struct rq){0};
	pthread_create(&a.th, NULL, requeue_waiter, &a);
	pthread_create(&b.th, NULL, requeue_waiter, &b);
	while (!a.asleep || !b.asleep)
		usleep(1000);
	usleep(50000);
	printf("CMP_REQUEUE_PI held lock: %ld\n", cmp_requeue(&cond, 1, 1, &pil, 0));
	printf("waiters bit: %d, still mine: %d\n", (pil & FUTEX_WAITERS) != 0, (pil & TID_MASK) == (uint32_t)gettid());
	F("UNLOCK_PI to the requeued", fx(&pil, FUTEX_UNLOCK_PI_PRIVATE, NULL));
	pthread_join(a.th, NULL);
	pthread_join(b.th, NULL);
	printf("waiters: %s/%s, owned it: %d/%d, word after: %#x\n", en(a.err), en(b.err), a.owned, b.owned, pil);
}

/* ---- robust ---- */

static pthread_mutex_t rm;

static void *die_holding(void *arg)
{
	long wait_ms = (long)arg;
	pthread_mutex_lock(&rm);
	usleep(wait_ms * 1000);
	return NULL; /* exits holding it */
}

static int rc_consistent, rc_unlock;

/* Locks the robust mutex; recovers it if its owner died. */
static int take_rm(void)
{
	int r = pthread_mutex_lock(&rm);
	rc_consistent = r == EOWNERDEAD ? pthread_mutex_consistent(&rm) : -1;
	rc_unlock = pthread_mutex_unlock(&rm);
	return r;
}

static void *lock_rm(void *arg)
{
	(void)arg;
	return (void *)(long)take_rm();
}

static void robust_case(const char *name, int protocol, int with_waiter)
{
	pthread_mutexattr_t a;
	pthread_mutexattr_init(&a);
	pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	pthread_mutexattr_setprotocol(&a, protocol);
	pthread_mutex_init(&rm, &a);
	pthread_t d, w;
	pthread_create(&d, NULL, die_holding, (void *)(long)(with_waiter ? 100 : 0));
	int r;
	if (with_waiter) {
		/* The waiter sleeps in the kernel when the owner dies. */
		usleep(20000);
		pthread_create(&w, NULL, lock_rm, NULL);
		void *res;
		pthread_join(w, &res);
		pthread_join(d, NULL);
		r = (int)(long)res;
	} else {
		pthread_join(d, NULL);
		r = take_rm();
	}
	printf("%s: owner died -> %s, consistent -> %s, unlock -> %s\n", name, en(r), en(rc_consistent), en(rc_unlock));
	printf("%s: relock -> %s\n", name, en(pthread_mutex_lock(&rm)));
	pthread_mutex_unlock(&rm);
	pthread_mutex_destroy(&rm);
}

/* ---- a signal while waiting ---- */

static volatile sig_atomic_t handled;

static void on_alarm(int sig)
{
	(void)sig;
	handled++;
}

static void *hold_pim_ms(void *arg)
{
	pthread_mutex_lock(&pim);
	usleep((long)arg * 1000);
	pthread_mutex_unlock(&pim);
	return NULL;
}

int main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	pthread_mutexattr_t a;
	pthread_mutexattr_init(&a);
	printf("setprotocol: %s\n", en(pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_INHERIT)));
	pthread_mutex_init(&pim, &a);

	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, counting, NULL);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	printf("counter: %ld (want %d)\n", counter, 4 * ROUNDS);

	pthread_mutex_lock(&pim);
	printf("relock own (normal type): would deadlock, skipped\n");
	void *res;
	pthread_create(&th[0], NULL, try_other, NULL);
	pthread_join(th[0], &res);
	printf("trylock held elsewhere: %s\n", en((int)(long)res));
	pthread_mutex_unlock(&pim);
	pthread_create(&th[0], NULL, try_other, NULL);
	pthread_join(th[0], &res);
	printf("trylock free: %s\n", en((int)(long)res));

	/* An error-checking PI mutex reports EDEADLK itself. */
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
	pthread_mutex_t ec;
	pthread_mutex_init(&ec, &a);
	pthread_mutex_lock(&ec);
	printf("errorcheck relock: %s\n", en(pthread_mutex_lock(&ec)));
	pthread_mutex_unlock(&ec);
	printf("errorcheck unlock unowned: %s\n", en(pthread_mutex_unlock(&ec)));

	/* A SIGALRM handler without SA_RESTART runs while we wait: the lock
	 * is still taken afterwards, never EINTR. */
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	pthread_create(&th[0], NULL, hold_pim_ms, (void *)300L);
	usleep(50000);
	ualarm(50000, 0);
	int r = pthread_mutex_lock(&pim);
	printf("lock across a signal: %s, handler ran: %d\n", en(r), handled);
	pthread_mutex_unlock(&pim);
	pthread_join(th[0], NULL);

	/* Raw word protocol. */
	word = 0;
	F("LOCK_PI free", fx(&word, FUTEX_LOCK_PI_PRIVATE, NULL));
	printf("word is my tid: %d\n", word == (uint32_t)gettid());
	F("LOCK_PI again", fx(&word, FUTEX_LOCK_PI_PRIVATE, NULL));
	F("TRYLOCK_PI again", fx(&word, FUTEX_TRYLOCK_PI_PRIVATE, NULL));
	F("UNLOCK_PI", fx(&word, FUTEX_UNLOCK_PI_PRIVATE, NULL));
	printf("word after unlock: %#x\n", word);
	F("UNLOCK_PI free", fx(&word, FUTEX_UNLOCK_PI_PRIVATE, NULL));
	F("TRYLOCK_PI free", fx(&word, FUTEX_TRYLOCK_PI_PRIVATE, NULL));
	printf("word is my tid: %d\n", word == (uint32_t)gettid());
	word |= FUTEX_WAITERS;
	F("UNLOCK_PI with waiters bit, none waiting", fx(&word, FUTEX_UNLOCK_PI_PRIVATE, NULL));
	printf("word: %#x\n", word);

	word = NOBODY;
	F("LOCK_PI dead owner", fx(&word, FUTEX_LOCK_PI_PRIVATE, NULL));
	printf("word: %#x\n", word);
	word = NOBODY;
	F("TRYLOCK_PI dead owner", fx(&word, FUTEX_TRYLOCK_PI_PRIVATE, NULL));
	word = NOBODY;
	F("UNLOCK_PI not owner", fx(&word, FUTEX_UNLOCK_PI_PRIVATE, NULL));
	word = NOBODY | FUTEX_OWNER_DIED;
	F("UNLOCK_PI owner died, not owner", fx(&word, FUTEX_UNLOCK_PI_PRIVATE, NULL));
	word = FUTEX_OWNER_DIED;
	F("LOCK_PI owner died, free", fx(&word, FUTEX_LOCK_PI_PRIVATE, NULL));
	printf("keeps OWNER_DIED: %d, mine: %d\n", (word & FUTEX_OWNER_DIED) != 0, (word & TID_MASK) == (uint32_t)gettid());
	F("UNLOCK_PI", fx(&word, FUTEX_UNLOCK_PI_PRIVATE, NULL));
	printf("word: %#x\n", word);

	F("LOCK_PI misaligned", fx((uint32_t *)((char *)&word + 1), FUTEX_LOCK_PI_PRIVATE, NULL));
	F("LOCK_PI bad address", fx((uint32_t *)8, FUTEX_LOCK_PI_PRIVATE, NULL));
	F("UNLOCK_PI bad address", fx((uint32_t *)8, FUTEX_UNLOCK_PI_PRIVATE, NULL));
	F("LOCK_PI realtime flag", fx(&word, FUTEX_LOCK_PI_PRIVATE | FUTEX_CLOCK_REALTIME, NULL));

	/* Another thread holds it. */
	word = 0;
	release = 0;
	holder_tid = 0;
	pthread_create(&th[0], NULL, raw_holder, (void *)100L);
	while (!holder_tid || word == 0)
		usleep(1000);
	printf("word is holder's: %d\n", word == (uint32_t)holder_tid);
	F("TRYLOCK_PI held", fx(&word, FUTEX_TRYLOCK_PI_PRIVATE, NULL));
	printf("waiters bit set: %d\n", (word & FUTEX_WAITERS) != 0);
	F("UNLOCK_PI held by other", fx(&word, FUTEX_UNLOCK_PI_PRIVATE, NULL));
	struct timespec bad = {0, 2000000000L};
	F("LOCK_PI bad timeout", fx(&word, FUTEX_LOCK_PI_PRIVATE, &bad));
	struct timespec rt = after_ms(CLOCK_REALTIME, 50);
	F("LOCK_PI timeout", fx(&word, FUTEX_LOCK_PI_PRIVATE, &rt));
	struct timespec mono = after_ms(CLOCK_MONOTONIC, 50);
	errno = 0;
	long r2 = fx(&word, FUTEX_LOCK_PI2 | FUTEX_PRIVATE_FLAG, &mono);
	/* Kernels before 5.14 lack LOCK_PI2. */
	printf("LOCK_PI2 timeout: %s\n", r2 == -1 && errno == ENOSYS ? "ETIMEDOUT" : r2 == -1 ? en(errno) : "ok");
	rt = after_ms(CLOCK_REALTIME, 50);
	errno = 0;
	r2 = fx(&word, FUTEX_LOCK_PI2 | FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME, &rt);
	printf("LOCK_PI2 realtime timeout: %s\n", r2 == -1 && errno == ENOSYS ? "ETIMEDOUT" : r2 == -1 ? en(errno) : "ok");
	release = 1;
	F("LOCK_PI waits for the holder", fx(&word, FUTEX_LOCK_PI_PRIVATE, NULL));
	printf("handed over: mine %d, waiters bit %d\n", (word & TID_MASK) == (uint32_t)gettid(), (word & FUTEX_WAITERS) != 0);
	pthread_join(th[0], NULL);
	F("UNLOCK_PI", fx(&word, FUTEX_UNLOCK_PI_PRIVATE, NULL));
	printf("word: %#x\n", word);

	requeue_tests();

	/* Robust mutexes whose owner exits holding them. */
	robust_case("robust", PTHREAD_PRIO_NONE, 0);
	robust_case("robust waiter", PTHREAD_PRIO_NONE, 1);
	robust_case("robust pi", PTHREAD_PRIO_INHERIT, 0);
	robust_case("robust pi waiter", PTHREAD_PRIO_INHERIT, 1);

	/* A process-shared robust PI mutex: the child dies holding it. */
	pthread_mutex_t *sm = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pthread_mutexattr_t sa2;
	pthread_mutexattr_init(&sa2);
	pthread_mutexattr_setpshared(&sa2, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setprotocol(&sa2, PTHREAD_PRIO_INHERIT);
	pthread_mutexattr_setrobust(&sa2, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(sm, &sa2);
	pid_t c = fork();
	if (c == 0) {
		pthread_mutex_lock(sm);
		usleep(100000);
		_exit(0);
	}
	usleep(30000);
	r = pthread_mutex_lock(sm);
	printf("shared pi, child died holding: %s\n", en(r));
	pthread_mutex_consistent(sm);
	pthread_mutex_unlock(sm);
	int st;
	waitpid(c, &st, 0);
	printf("child status: %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	return 0;
}
