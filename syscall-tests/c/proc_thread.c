/* Checks pthreads: create/join, mutex counter, condvar ping-pong, TLS, thread ids, exit() from a thread, detach + semaphore, sem_timedwait timeout. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
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
	case EAGAIN: return "EAGAIN";
	case ETIMEDOUT: return "ETIMEDOUT";
	case EDEADLK: return "EDEADLK";
	case ESRCH: return "ESRCH";
	case ENOMEM: return "ENOMEM";
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

static pid_t xfork(void)
{
	fflush(stdout);
	return fork();
}

static const char *status_str(int st, char *buf, size_t n)
{
	if (WIFEXITED(st))
		snprintf(buf, n, "exited %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, n, "signaled %d", WTERMSIG(st));
	else
		snprintf(buf, n, "other 0x%x", st);
	return buf;
}

static pid_t my_gettid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

/* create/join with return values. */
static void *doubler(void *arg)
{
	return (void *)((intptr_t)arg * 2);
}

static void *exiter(void *arg)
{
	pthread_exit((void *)((intptr_t)arg + 100));
	return NULL;
}

/* Mutex-protected counter. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static long counter;
static void *incrementer(void *arg)
{
	(void)arg;
	for (int i = 0; i < 100000; i++) {
		pthread_mutex_lock(&mu);
		counter++;
		pthread_mutex_unlock(&mu);
	}
	return NULL;
}

/* Atomic counter (no locks). */
static long acounter;
static void *atomic_incrementer(void *arg)
{
	(void)arg;
	for (int i = 0; i < 100000; i++)
		__atomic_fetch_add(&acounter, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/* Condition variable ping-pong. */
static pthread_mutex_t pp_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pp_cv = PTHREAD_COND_INITIALIZER;
static int turn; /* 0: ping's turn, 1: pong's turn */
static int pongs;
#define ROUNDS 1000
static void *ponger(void *arg)
{
	(void)arg;
	for (int i = 0; i < ROUNDS; i++) {
		pthread_mutex_lock(&pp_mu);
		while (turn != 1)
			pthread_cond_wait(&pp_cv, &pp_mu);
		pongs++;
		turn = 0;
		pthread_cond_signal(&pp_cv);
		pthread_mutex_unlock(&pp_mu);
	}
	return NULL;
}

/* Thread-local storage and ids. */
static __thread int tls_val = 7;
static __thread char tls_buf[64];
struct idinfo {
	int idx;
	int tls_initial;
	int tls_ok;
	pid_t tid;
	pid_t pid;
	pthread_t self;
	void *tls_addr;
};
static pthread_barrier_t barrier;
static void *idthread(void *arg)
{
	struct idinfo *in = arg;
	in->tls_initial = tls_val;
	tls_val = 1000 + in->idx;
	snprintf(tls_buf, sizeof tls_buf, "thread %d", in->idx);
	in->tid = my_gettid();
	in->pid = getpid();
	in->self = pthread_self();
	in->tls_addr = &tls_val;
	/* Everyone has written its TLS before anyone checks. */
	pthread_barrier_wait(&barrier);
	char want[64];
	snprintf(want, sizeof want, "thread %d", in->idx);
	in->tls_ok = tls_val == 1000 + in->idx && strcmp(tls_buf, want) == 0;
	pthread_barrier_wait(&barrier);
	return NULL;
}

/* exit() from a thread. */
static void *exit5(void *arg)
{
	(void)arg;
	exit(5);
}

static void *sleeper(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

/* Detach + semaphore. */
static sem_t sem;
static volatile int detached_ran;
static void *detached(void *arg)
{
	(void)arg;
	struct timespec ts = { 0, 20000000 };
	nanosleep(&ts, NULL);
	detached_ran = 1;
	sem_post(&sem);
	return NULL;
}

static double now_mono(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(void)
{
	char buf[64];
	pthread_t t[4];

	/* create/join with return values. */
	{
		int ok = 1;
		for (intptr_t i = 0; i < 4; i++)
			if (pthread_create(&t[i], NULL, doubler, (void *)(i + 1)) != 0)
				ok = 0;
		CHECK(ok, "pthread_create x4");
		long sum = 0;
		for (int i = 0; i < 4; i++) {
			void *r = NULL;
			if (pthread_join(t[i], &r) != 0)
				ok = 0;
			sum += (long)(intptr_t)r;
		}
		CHECK(ok, "pthread_join x4");
		printf("sum of thread return values: %ld\n", sum);
		void *r = NULL;
		pthread_t e;
		CHECK(pthread_create(&e, NULL, exiter, (void *)5) == 0 && pthread_join(e, &r) == 0, "pthread_exit thread");
		printf("pthread_exit value: %ld\n", (long)(intptr_t)r);
		CHECK(pthread_join(pthread_self(), NULL) == EDEADLK, "join self EDEADLK");
	}

	/* Mutex counter. */
	{
		counter = 0;
		for (int i = 0; i < 4; i++)
			pthread_create(&t[i], NULL, incrementer, NULL);
		for (int i = 0; i < 4; i++)
			pthread_join(t[i], NULL);
		printf("mutex counter: %ld\n", counter);
		acounter = 0;
		for (int i = 0; i < 4; i++)
			pthread_create(&t[i], NULL, atomic_incrementer, NULL);
		for (int i = 0; i < 4; i++)
			pthread_join(t[i], NULL);
		printf("atomic counter: %ld\n", acounter);
		CHECK(pthread_mutex_trylock(&mu) == 0, "trylock free mutex");
		CHECK(pthread_mutex_trylock(&mu) == EBUSY, "trylock held mutex EBUSY");
		pthread_mutex_unlock(&mu);
	}

	/* Condition variable ping-pong. */
	{
		pthread_t p;
		turn = 0;
		pongs = 0;
		pthread_create(&p, NULL, ponger, NULL);
		int pings = 0;
		for (int i = 0; i < ROUNDS; i++) {
			pthread_mutex_lock(&pp_mu);
			while (turn != 0)
				pthread_cond_wait(&pp_cv, &pp_mu);
			pings++;
			turn = 1;
			pthread_cond_signal(&pp_cv);
			pthread_mutex_unlock(&pp_mu);
		}
		pthread_mutex_lock(&pp_mu);
		while (turn != 0)
			pthread_cond_wait(&pp_cv, &pp_mu);
		pthread_mutex_unlock(&pp_mu);
		pthread_join(p, NULL);
		printf("ping-pong: %d pings, %d pongs\n", pings, pongs);
	}

	/* TLS, pthread_self, gettid. */
	{
		struct idinfo in[4];
		memset(in, 0, sizeof in);
		tls_val = 1;
		pthread_barrier_init(&barrier, NULL, 4);
		for (int i = 0; i < 4; i++) {
			in[i].idx = i;
			pthread_create(&t[i], NULL, idthread, &in[i]);
		}
		for (int i = 0; i < 4; i++)
			pthread_join(t[i], NULL);
		pthread_barrier_destroy(&barrier);
		int init_ok = 1, tls_ok = 1, distinct = 1, tid_differs = 1, pid_same = 1;
		for (int i = 0; i < 4; i++) {
			init_ok &= in[i].tls_initial == 7;
			tls_ok &= in[i].tls_ok;
			tid_differs &= in[i].tid != getpid() && in[i].tid > 0;
			pid_same &= in[i].pid == getpid();
			if (pthread_equal(in[i].self, pthread_self()))
				distinct = 0;
			for (int j = 0; j < i; j++) {
				if (pthread_equal(in[i].self, in[j].self) || in[i].tid == in[j].tid ||
				    in[i].tls_addr == in[j].tls_addr)
					distinct = 0;
			}
		}
		CHECK(init_ok, "__thread initial value in new threads");
		CHECK(tls_ok, "__thread values distinct per thread");
		CHECK(tls_val == 1, "main thread __thread value unchanged");
		CHECK(distinct, "pthread_self, tids and TLS addresses distinct");
		printf("gettid in threads vs getpid: %s\n", tid_differs ? "differs" : "same");
		printf("getpid in threads vs main: %s\n", pid_same ? "same" : "differs");
		printf("gettid in main vs getpid: %s\n", my_gettid() == getpid() ? "same" : "differs");
	}

	/* exit(5) from a thread ends the whole process. */
	{
		pid_t pid = xfork();
		if (pid == 0) {
			pthread_t x;
			if (pthread_create(&x, NULL, exit5, NULL) != 0)
				_exit(50);
			pthread_join(x, NULL);
			for (;;)
				pause();
		}
		int st = 0;
		CHECK(waitpid(pid, &st, 0) == pid, "waitpid thread-exit child");
		printf("process after exit(5) in a thread: %s\n", status_str(st, buf, sizeof buf));
	}

	/* SIGKILL to a multithreaded child (its second thread is blocked too). */
	{
		pid_t pid = xfork();
		if (pid == 0) {
			pthread_t x;
			pthread_create(&x, NULL, sleeper, NULL);
			for (;;)
				pause();
		}
		struct timespec ts = { 0, 20000000 };
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
		int st = 0;
		waitpid(pid, &st, 0);
		printf("multithreaded child after SIGKILL: %s\n", status_str(st, buf, sizeof buf));
	}

	/* Detached thread + semaphore. */
	{
		CHECK(sem_init(&sem, 0, 0) == 0, "sem_init");
		pthread_t d;
		CHECK(pthread_create(&d, NULL, detached, NULL) == 0, "create thread to detach");
		CHECK(pthread_detach(d) == 0, "pthread_detach");
		CHECK(sem_wait(&sem) == 0, "sem_wait");
		CHECK(detached_ran == 1, "detached thread posted");
		int v = -1;
		sem_getvalue(&sem, &v);
		printf("semaphore value after wait: %d\n", v);
	}

	/* sem_timedwait times out. */
	{
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 50000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		double t0 = now_mono();
		errno = 0;
		int r = sem_timedwait(&sem, &ts);
		double el = now_mono() - t0;
		CHECK(r == -1 && errno == ETIMEDOUT, "sem_timedwait ETIMEDOUT");
		CHECK(el >= 0.045, "sem_timedwait waited ~50 ms");
		errno = 0;
		CHECK(sem_trywait(&sem) == -1 && errno == EAGAIN, "sem_trywait EAGAIN");
		sem_post(&sem);
		CHECK(sem_trywait(&sem) == 0, "sem_trywait after post");
		sem_destroy(&sem);
	}

	/* pthread_cond_timedwait times out too. */
	{
		pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
		pthread_cond_t c = PTHREAD_COND_INITIALIZER;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 30000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_mutex_lock(&m);
		int r = pthread_cond_timedwait(&c, &m, &ts);
		pthread_mutex_unlock(&m);
		CHECK(r == ETIMEDOUT, "pthread_cond_timedwait ETIMEDOUT");
	}

	if (failures) {
		printf("%d failures\n", failures);
		return 1;
	}
	printf("all ok\n");
	return 0;
}
