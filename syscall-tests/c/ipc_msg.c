/* System V message queues: msgget/msgsnd/msgrcv/msgctl. Type selection
 * (0, >0, <0, MSG_EXCEPT), MSG_NOERROR and E2BIG, MSG_COPY, the queue's
 * byte budget with a sender sleeping until a receive makes room, a
 * ping-pong between parent and child, EIDRM on removal, signals (EINTR,
 * or a restart with SA_RESTART), permissions as an unprivileged child,
 * the info and index-based stat commands, /proc/sysvipc/msg, and errno
 * for bad arguments and bad pointers. Prints no ids, keys, pids or times. */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MSG_COPY
#define MSG_COPY 040000
#endif
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
	case EIDRM: return "EIDRM";
	case ENOMSG: return "ENOMSG";
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

struct msg {
	long mtype;
	char mtext[8200];
};

static long k_msgctl(int id, int cmd, void *buf)
{
	return syscall(SYS_msgctl, id, cmd, buf);
}
static long k_msgsnd(int id, void *m, size_t n, int f)
{
	return syscall(SYS_msgsnd, id, m, n, f);
}
static long k_msgrcv(int id, void *m, size_t n, long t, int f)
{
	return syscall(SYS_msgrcv, id, m, n, t, f);
}

static int key_base;
static key_t key_of(int n)
{
	return (key_t)(0x5d000000 | (key_base << 8) | n);
}

static int snd(int id, long type, const char *text, int flags)
{
	struct msg m;
	m.mtype = type;
	size_t n = strlen(text);
	memcpy(m.mtext, text, n);
	return msgsnd(id, &m, n, flags);
}

/* Receives and prints "type:text", or the errno name. */
static void rcv(const char *what, int id, size_t size, long type, int flags)
{
	struct msg m;
	memset(&m, 0, sizeof m);
	errno = 0;
	long n = msgrcv(id, &m, size, type, flags | IPC_NOWAIT);
	if (n < 0)
		printf("%s: %s\n", what, en(errno));
	else
		printf("%s: %ld:%.*s (%ld)\n", what, m.mtype, (int)n, m.mtext, n);
}

static struct msqid_ds st(int id)
{
	struct msqid_ds d;
	memset(&d, 0, sizeof d);
	msgctl(id, IPC_STAT, &d);
	return d;
}

static void ms(int n)
{
	struct timespec t = { n / 1000, (n % 1000) * 1000000L };
	nanosleep(&t, NULL);
}

static int drop_privileges(void)
{
	gid_t g = 1000;
	return setgroups(1, &g) || setgid(1000) || setuid(1000);
}

static void errors(void)
{
	printf("-- errors\n");
	R("msgget unknown key", msgget(key_of(1), 0600));
	int id;
	R("msgget create", id = msgget(key_of(1), IPC_CREAT | 0600));
	R("msgget IPC_EXCL", msgget(key_of(1), IPC_CREAT | IPC_EXCL | 0600));
	YN("msgget again same id", msgget(key_of(1), 0) == id);
	struct msg m = { 0, "x" };
	R("msgsnd mtype 0", msgsnd(id, &m, 1, 0));
	m.mtype = -5;
	R("msgsnd mtype -5", msgsnd(id, &m, 1, 0));
	m.mtype = 1;
	R("msgsnd 8193 bytes", msgsnd(id, &m, 8193, 0));
	R("msgsnd size -1", k_msgsnd(id, &m, (size_t)-1, 0));
	R("msgsnd id -1", msgsnd(-1, &m, 1, 0));
	R("msgsnd unknown id", msgsnd(id + 1000000, &m, 1, 0));
	R("msgsnd bad pointer", k_msgsnd(id, BAD, 1, 0));
	/* mtype readable, text on an unmapped page. */
	char *pg = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	munmap(pg + 4096, 4096);
	long *edge = (long *)(pg + 4096 - sizeof(long));
	*edge = 1;
	R("msgsnd bad text", k_msgsnd(id, edge, 1, 0));
	R("msgsnd bad text, empty", k_msgsnd(id, edge, 0, IPC_NOWAIT));
	*edge = 0;
	R("msgsnd bad text, mtype 0", k_msgsnd(id, edge, 1, 0));
	munmap(pg, 4096);
	R("msgrcv empty after those, IPC_NOWAIT", msgrcv(id, &m, 1, 0, IPC_NOWAIT | MSG_NOERROR));
	R("msgrcv size -1", k_msgrcv(id, &m, (size_t)-1, 0, 0));
	R("msgrcv id -1", k_msgrcv(-1, &m, 1, 0, 0));
	R("msgrcv empty, IPC_NOWAIT", msgrcv(id, &m, 1, 0, IPC_NOWAIT));
	R("msgrcv MSG_COPY without IPC_NOWAIT", msgrcv(id, &m, 1, 0, MSG_COPY));
	R("msgrcv MSG_COPY with MSG_EXCEPT", msgrcv(id, &m, 1, 0, MSG_COPY | MSG_EXCEPT | IPC_NOWAIT));
	R("msgrcv MSG_COPY bad buffer", k_msgrcv(id, BAD, 16, 0, MSG_COPY | IPC_NOWAIT));
	R("msgctl id -1", k_msgctl(-1, IPC_STAT, &m));
	R("msgctl cmd -1", k_msgctl(id, -1, NULL));
	R("msgctl cmd 99", k_msgctl(id, 99, NULL));
	R("IPC_STAT bad pointer", k_msgctl(id, IPC_STAT, BAD));
	R("IPC_SET bad pointer", k_msgctl(id, IPC_SET, BAD));
	R("IPC_INFO bad pointer", k_msgctl(0, IPC_INFO, BAD));
	R("MSG_INFO bad pointer", k_msgctl(0, MSG_INFO, BAD));
	struct msqid_ds d = st(id);
	d.msg_perm.uid = (uid_t)-1;
	R("IPC_SET uid -1", msgctl(id, IPC_SET, &d));
	R("IPC_RMID", msgctl(id, IPC_RMID, NULL));
	R("IPC_RMID again", msgctl(id, IPC_RMID, NULL));
	R("msgsnd removed", snd(id, 1, "x", 0));
	R("msgget removed key", msgget(key_of(1), 0));
}

static void types(void)
{
	printf("-- types\n");
	int id = msgget(IPC_PRIVATE, 0640);
	struct msqid_ds d = st(id);
	printf("mode %o qnum %lu cbytes %lu\n", d.msg_perm.mode, (unsigned long)d.msg_qnum, (unsigned long)d.__msg_cbytes);
	unsigned long mnb = 0;
	FILE *f = fopen("/proc/sys/kernel/msgmnb", "r");
	if (f) {
		fscanf(f, "%lu", &mnb);
		fclose(f);
	}
	YN("qbytes is msgmnb", d.msg_qbytes == mnb);
	YN("times 0 but ctime, pids 0", d.msg_stime == 0 && d.msg_rtime == 0 && d.msg_ctime != 0 && d.msg_lspid == 0 && d.msg_lrpid == 0);
	const char *texts[] = { "three", "one", "two", "one again", "five", "empty" };
	long typesv[] = { 3, 1, 2, 1, 5, 4 };
	for (int i = 0; i < 5; i++)
		R("msgsnd", snd(id, typesv[i], texts[i], 0));
	struct msg m = { 4 };
	R("msgsnd empty text", msgsnd(id, &m, 0, 0));
	d = st(id);
	printf("qnum %lu cbytes %lu\n", (unsigned long)d.msg_qnum, (unsigned long)d.__msg_cbytes);
	YN("lspid is me, stime set", d.msg_lspid == getpid() && d.msg_stime != 0);
	rcv("MSG_COPY 1", id, 100, 1, MSG_COPY);
	rcv("MSG_COPY 5", id, 100, 5, MSG_COPY);
	rcv("MSG_COPY 6", id, 100, 6, MSG_COPY);
	rcv("MSG_COPY -1", id, 100, -1, MSG_COPY);
	rcv("MSG_COPY too small", id, 2, 0, MSG_COPY);
	rcv("MSG_COPY too small, MSG_NOERROR", id, 2, 0, MSG_COPY | MSG_NOERROR);
	d = st(id);
	printf("qnum after copies %lu\n", (unsigned long)d.msg_qnum);
	rcv("type 2", id, 100, 2, 0);
	rcv("type 9", id, 100, 9, 0);
	rcv("too small", id, 3, 0, 0);
	rcv("too small, MSG_NOERROR", id, 3, 0, MSG_NOERROR);
	rcv("except 1", id, 100, 1, MSG_EXCEPT);
	rcv("lowest <= 4", id, 100, -4, 0);
	rcv("lowest <= 4", id, 100, -4, 0);
	rcv("lowest <= 4", id, 100, -4, 0);
	rcv("lowest <= 4", id, 100, -4, 0);
	snd(id, 9, "nine", 0);
	rcv("lowest <= LONG_MIN", id, 100, (long)(-9223372036854775807L - 1), 0);
	rcv("any", id, 100, 0, 0);
	d = st(id);
	printf("qnum %lu cbytes %lu\n", (unsigned long)d.msg_qnum, (unsigned long)d.__msg_cbytes);
	YN("lrpid is me, rtime set", d.msg_lrpid == getpid() && d.msg_rtime != 0);

	/* A bad receive buffer loses the message, as Linux. */
	snd(id, 1, "lost", 0);
	R("msgrcv bad buffer", k_msgrcv(id, BAD, 100, 0, IPC_NOWAIT));
	printf("qnum after %lu\n", (unsigned long)st(id).msg_qnum);
	struct msg big;
	big.mtype = 7;
	memset(big.mtext, 'b', sizeof big.mtext);
	R("msgsnd 8192 bytes", msgsnd(id, &big, 8192, 0));
	memset(&big, 0, sizeof big);
	V("msgrcv 8192 bytes", msgrcv(id, &big, 8192, 0, 0));
	YN("contents", big.mtext[0] == 'b' && big.mtext[8191] == 'b' && big.mtext[8192] == 0);
	msgctl(id, IPC_RMID, NULL);
}

static void budget(void)
{
	printf("-- budget\n");
	int id = msgget(IPC_PRIVATE, 0600);
	struct msqid_ds d = st(id);
	d.msg_qbytes = 100;
	R("IPC_SET qbytes 100", msgctl(id, IPC_SET, &d));
	printf("qbytes %lu\n", (unsigned long)st(id).msg_qbytes);
	struct msg m;
	m.mtype = 1;
	memset(m.mtext, 'a', 100);
	R("60 bytes", msgsnd(id, &m, 60, 0));
	R("50 more, IPC_NOWAIT", msgsnd(id, &m, 50, IPC_NOWAIT));
	R("40 more", msgsnd(id, &m, 40, IPC_NOWAIT));
	R("empty message when bytes are full", msgsnd(id, &m, 0, IPC_NOWAIT));
	fflush(stdout);
	pid_t c = fork();
	if (c == 0)
		_exit(msgsnd(id, &m, 30, 0) == 0 ? 0 : 10 + errno);
	ms(100);
	printf("qnum while the sender sleeps %lu\n", (unsigned long)st(id).msg_qnum);
	V("receive 60", msgrcv(id, &m, 100, 0, 0));
	int s;
	waitpid(c, &s, 0);
	printf("sender status %d\n", WIFEXITED(s) ? WEXITSTATUS(s) : -1);
	d = st(id);
	printf("qnum %lu cbytes %lu\n", (unsigned long)d.msg_qnum, (unsigned long)d.__msg_cbytes);
	while (msgrcv(id, &m, 100, 0, IPC_NOWAIT) >= 0)
		;
	/* The budget also counts messages. */
	d.msg_qbytes = 3;
	msgctl(id, IPC_SET, &d);
	R("empty 1", msgsnd(id, &m, 0, IPC_NOWAIT));
	R("empty 2", msgsnd(id, &m, 0, IPC_NOWAIT));
	R("empty 3", msgsnd(id, &m, 0, IPC_NOWAIT));
	R("empty 4", msgsnd(id, &m, 0, IPC_NOWAIT));
	/* (Raising qbytes past msgmnb needs CAP_SYS_RESOURCE, which the
	 * host's root may lack: only the unprivileged case is checked.) */
	/* A sleeping sender fails with EIDRM when the queue goes. */
	d.msg_qbytes = 0;
	msgctl(id, IPC_SET, &d);
	c = fork();
	if (c == 0)
		_exit(msgsnd(id, &m, 1, 0) == 0 ? 0 : 10 + errno);
	ms(100);
	msgctl(id, IPC_RMID, NULL);
	waitpid(c, &s, 0);
	printf("sleeping sender got %s\n", WIFEXITED(s) && WEXITSTATUS(s) >= 10 ? en(WEXITSTATUS(s) - 10) : "nothing");
}

static void ping_pong(void)
{
	printf("-- ping-pong\n");
	int id = msgget(IPC_PRIVATE, 0600);
	enum { ROUNDS = 200 };
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		struct msg m;
		for (int i = 0; i < ROUNDS; i++) {
			long n = msgrcv(id, &m, sizeof m.mtext, 1, 0);
			if (n < 0)
				_exit(2);
			m.mtext[n] = 0;
			int got = atoi(m.mtext + 5);
			if (got != i)
				_exit(3);
			snprintf(m.mtext, sizeof m.mtext, "pong %d", i);
			m.mtype = 2;
			if (msgsnd(id, &m, strlen(m.mtext), 0) != 0)
				_exit(4);
		}
		_exit(0);
	}
	int ok = 0;
	for (int i = 0; i < ROUNDS; i++) {
		struct msg m = { 1 };
		snprintf(m.mtext, sizeof m.mtext, "ping %d", i);
		if (msgsnd(id, &m, strlen(m.mtext), 0) != 0)
			break;
		long n = msgrcv(id, &m, sizeof m.mtext, 2, 0);
		if (n < 0)
			break;
		m.mtext[n] = 0;
		char want[32];
		snprintf(want, sizeof want, "pong %d", i);
		if (strcmp(m.mtext, want) == 0)
			ok++;
	}
	int s;
	waitpid(c, &s, 0);
	printf("round trips %d, child status %d\n", ok, WIFEXITED(s) ? WEXITSTATUS(s) : -1);
	printf("qnum %lu\n", (unsigned long)st(id).msg_qnum);

	/* Sleeping receivers get messages straight from the sender, in order. */
	pid_t kids[2];
	for (int k = 0; k < 2; k++) {
		kids[k] = fork();
		if (kids[k] == 0) {
			struct msg m;
			long n = msgrcv(id, &m, 100, 0, 0);
			if (n < 0)
				_exit(100 + errno);
			_exit(m.mtext[0]);
		}
		ms(100);
	}
	snd(id, 3, "A", 0);
	snd(id, 3, "B", 0);
	for (int k = 0; k < 2; k++) {
		waitpid(kids[k], &s, 0);
		printf("receiver %d got %c\n", k, WIFEXITED(s) ? WEXITSTATUS(s) : '?');
	}
	/* A receiver whose buffer is too small fails; the message goes on to the next. */
	kids[0] = fork();
	if (kids[0] == 0) {
		struct msg m;
		_exit(msgrcv(id, &m, 2, 0, 0) < 0 ? 100 + errno : 0);
	}
	ms(50);
	kids[1] = fork();
	if (kids[1] == 0) {
		struct msg m;
		long n = msgrcv(id, &m, 100, 0, 0);
		_exit(n < 0 ? 100 + errno : n);
	}
	ms(50);
	snd(id, 1, "long one", 0);
	waitpid(kids[0], &s, 0);
	printf("small receiver: %s\n", WIFEXITED(s) && WEXITSTATUS(s) >= 100 ? en(WEXITSTATUS(s) - 100) : "ok");
	waitpid(kids[1], &s, 0);
	printf("next receiver got %d bytes\n", WIFEXITED(s) ? WEXITSTATUS(s) : -1);
	/* Removal wakes receivers with EIDRM. */
	c = fork();
	if (c == 0) {
		struct msg m;
		_exit(msgrcv(id, &m, 100, 0, 0) < 0 ? 100 + errno : 0);
	}
	ms(100);
	msgctl(id, IPC_RMID, NULL);
	waitpid(c, &s, 0);
	printf("after IPC_RMID receiver got %s\n", WIFEXITED(s) && WEXITSTATUS(s) >= 100 ? en(WEXITSTATUS(s) - 100) : "nothing");
}

static void on_alarm(int sig)
{
	(void)sig;
}

static void signals(void)
{
	printf("-- signals\n");
	int id = msgget(IPC_PRIVATE, 0600);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = { { 0, 0 }, { 0, 100000 } };
	setitimer(ITIMER_REAL, &it, NULL);
	struct msg m;
	R("msgrcv with handler", msgrcv(id, &m, 100, 0, 0));
	sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, NULL);
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		ms(300);
		snd(id, 1, "late", 0);
		_exit(0);
	}
	setitimer(ITIMER_REAL, &it, NULL);
	/* ERESTARTNOHAND: a handler makes it EINTR even with SA_RESTART. */
	V("msgrcv with SA_RESTART handler", msgrcv(id, &m, 100, 0, 0));
	int s;
	waitpid(c, &s, 0);
	rcv("the late message", id, 100, 0, MSG_COPY);
	/* A full queue: the sender is interrupted too. */
	struct msqid_ds d = st(id);
	d.msg_qbytes = 0;
	msgctl(id, IPC_SET, &d);
	sa.sa_flags = 0;
	sigaction(SIGALRM, &sa, NULL);
	setitimer(ITIMER_REAL, &it, NULL);
	R("msgsnd with handler", snd(id, 1, "x", 0));
	signal(SIGALRM, SIG_DFL);
	msgctl(id, IPC_RMID, NULL);
}

static void unprivileged(void)
{
	printf("-- permissions\n");
	int id = msgget(key_of(2), IPC_CREAT | 0600);
	int wo = msgget(IPC_PRIVATE, 0602);
	snd(id, 1, "secret", 0);
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		if (drop_privileges()) {
			printf("cannot drop privileges\n");
			_exit(1);
		}
		struct msqid_ds d;
		memset(&d, 0, sizeof d);
		struct msg m;
		R("msgget without access bits", msgget(key_of(2), 0));
		R("msgget asking write", msgget(key_of(2), 0200));
		R("msgsnd", snd(id, 1, "x", IPC_NOWAIT));
		R("msgrcv", msgrcv(id, &m, 100, 0, IPC_NOWAIT));
		R("MSG_COPY", msgrcv(id, &m, 100, 0, IPC_NOWAIT | MSG_COPY));
		R("IPC_STAT", msgctl(id, IPC_STAT, &d));
		YN("MSG_STAT_ANY", msgctl(id & 0x7fff, MSG_STAT_ANY, &d) == id);
		R("MSG_STAT", msgctl(id & 0x7fff, MSG_STAT, &d));
		R("IPC_SET", msgctl(id, IPC_SET, &d));
		R("IPC_RMID", msgctl(id, IPC_RMID, NULL));
		R("write-only: msgsnd", snd(wo, 1, "x", IPC_NOWAIT));
		R("write-only: msgrcv", msgrcv(wo, &m, 100, 0, IPC_NOWAIT));
		/* An owner without CAP_SYS_RESOURCE may not raise qbytes past msgmnb. */
		int mine = msgget(IPC_PRIVATE, 0600);
		d = st(mine);
		d.msg_qbytes = 1 << 20;
		R("owner raises qbytes past msgmnb", msgctl(mine, IPC_SET, &d));
		d.msg_qbytes = 10;
		R("owner lowers qbytes", msgctl(mine, IPC_SET, &d));
		R("owner IPC_RMID", msgctl(mine, IPC_RMID, NULL));
		fflush(stdout);
		_exit(0);
	}
	int s;
	waitpid(c, &s, 0);
	YN("child done", WIFEXITED(s) && WEXITSTATUS(s) == 0);
	msgctl(id, IPC_RMID, NULL);
	msgctl(wo, IPC_RMID, NULL);
}

static void info(void)
{
	printf("-- info\n");
	int id = msgget(IPC_PRIVATE, 0600);
	snd(id, 1, "abc", 0);
	struct msginfo mi;
	long r = msgctl(0, IPC_INFO, (struct msqid_ds *)&mi);
	YN("IPC_INFO returns an index", r >= 0);
	long v[3] = { 0 };
	const char *names[] = { "/proc/sys/kernel/msgmax", "/proc/sys/kernel/msgmnb", "/proc/sys/kernel/msgmni" };
	for (int i = 0; i < 3; i++) {
		FILE *f = fopen(names[i], "r");
		if (f) {
			fscanf(f, "%ld", &v[i]);
			fclose(f);
		}
	}
	YN("msginfo matches /proc/sys/kernel", mi.msgmax == v[0] && mi.msgmnb == v[1] && mi.msgmni == v[2]);
	printf("msgssz %d msgseg %u msgpool %d msgmap %d msgtql %d\n", mi.msgssz, (unsigned)mi.msgseg, mi.msgpool, mi.msgmap, mi.msgtql);
	r = msgctl(0, MSG_INFO, (struct msqid_ds *)&mi);
	YN("MSG_INFO counts ours", r >= 0 && mi.msgpool >= 1 && mi.msgmap >= 1 && mi.msgtql >= 3);
	int found = 0;
	for (long i = 0; i <= r; i++) {
		struct msqid_ds d;
		if (msgctl(i, MSG_STAT, &d) == id)
			found = 1;
	}
	YN("MSG_STAT finds it by index", found);
	FILE *p = fopen("/proc/sysvipc/msg", "r");
	char line[512];
	found = 0;
	if (p && fgets(line, sizeof line, p)) {
		printf("header: %s", line);
		while (fgets(line, sizeof line, p)) {
			int k, qid;
			unsigned perms;
			unsigned long cbytes, qnum;
			if (sscanf(line, "%d %d %o %lu %lu", &k, &qid, &perms, &cbytes, &qnum) == 5 && qid == id)
				found = printf("listed: perms %o cbytes %lu qnum %lu\n", perms, cbytes, qnum) > 0;
		}
	}
	if (p)
		fclose(p);
	YN("listed in /proc/sysvipc/msg", found);
	struct msqid_ds d = st(id);
	d.msg_perm.mode = 0;
	R("IPC_SET mode 0", msgctl(id, IPC_SET, &d));
	rcv("root receives from a mode 0 queue", id, 100, 0, 0);
	msgctl(id, IPC_RMID, NULL);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	key_base = getpid() & 0xffff;
	errors();
	types();
	budget();
	ping_pong();
	signals();
	unprivileged();
	info();
	return 0;
}
