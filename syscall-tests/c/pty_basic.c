/* Checks pseudo-terminals: posix_openpt/grantpt/unlockpt/ptsname, the slave's node and name,
 * termios defaults, canonical and raw input with echo, output processing, VMIN/VTIME, window
 * size and SIGWINCH, ISIG characters and job control (signals and stops) in a child session,
 * hangup when the master closes, EIO on the master after the slave closes, poll, packet mode,
 * and blocking transfers.
 * Nothing here assumes a controlling terminal: pty numbers and pids are never printed. Linux moves
 * data between the two ends asynchronously, so reads of expected data poll first. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static int failures;

static const char *errname(int e)
{
	switch (e) {
	case 0: return "0";
	case EIO: return "EIO";
	case EAGAIN: return "EAGAIN";
	case EBADF: return "EBADF";
	case EINTR: return "EINTR";
	case EINVAL: return "EINVAL";
	case ENOTTY: return "ENOTTY";
	case EPERM: return "EPERM";
	case ENXIO: return "ENXIO";
	case ENOENT: return "ENOENT";
	case ESRCH: return "ESRCH";
	case EFAULT: return "EFAULT";
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

/* Prints bytes with control characters escaped. */
static void show(const char *what, const char *b, int n)
{
	printf("%s: %d \"", what, n);
	for (int i = 0; i < n; i++) {
		unsigned char c = (unsigned char)b[i];
		if (c < 32 || c > 126 || c == '"' || c == '\\')
			printf("\\x%02x", c);
		else
			putchar(c);
	}
	printf("\"\n");
}

/* Reads up to `want` bytes, waiting at most `ms` for each piece. */
static int rd(int fd, char *b, int want, int ms)
{
	int got = 0;
	while (got < want) {
		struct pollfd p = {fd, POLLIN, 0};
		if (poll(&p, 1, ms) <= 0 || !(p.revents & POLLIN))
			break;
		ssize_t r = read(fd, b + got, want - got);
		if (r <= 0)
			break;
		got += (int)r;
	}
	return got;
}

/* Whether `fd` becomes readable within `ms`. */
static int readable(int fd, int ms)
{
	struct pollfd p = {fd, POLLIN, 0};
	return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

/* Reads exactly one step once `fd` is readable (one canonical line). */
static int rd1(int fd, char *b, int n)
{
	if (!readable(fd, 2000))
		return -2;
	return (int)read(fd, b, n);
}

static void expect_bytes(int fd, const char *what, const char *want, int n)
{
	char b[512];
	int got = rd(fd, b, n, 2000);
	if (got == n && memcmp(b, want, n) == 0) {
		printf("%s: ok\n", what);
	} else {
		show(what, b, got);
		printf("%s: FAIL\n", what);
		failures++;
	}
}

static int open_pair(int *m, int *s, char *name, size_t len)
{
	*m = posix_openpt(O_RDWR | O_NOCTTY);
	if (*m < 0 || grantpt(*m) || unlockpt(*m) || ptsname_r(*m, name, len))
		return -1;
	*s = open(name, O_RDWR | O_NOCTTY);
	return *s < 0 ? -1 : 0;
}

static volatile sig_atomic_t got_sig[65];
static void on_sig(int s) { got_sig[s]++; }

static void catch(int sig, int restart)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sig;
	sa.sa_flags = restart ? SA_RESTART : 0;
	sigaction(sig, &sa, NULL);
}

/* Waits up to 2 s for signal `sig` to have arrived. */
static int wait_sig(int sig)
{
	for (int i = 0; i < 400 && !got_sig[sig]; i++)
		usleep(5000);
	return got_sig[sig] > 0;
}

static void basics(void)
{
	char name[64], path[64], link[64];
	int m = posix_openpt(O_RDWR | O_NOCTTY);
	CHECK(m >= 0, "posix_openpt");
	CHECK(grantpt(m) == 0, "grantpt");
	CHECK(ptsname_r(m, name, sizeof name) == 0 && strncmp(name, "/dev/pts/", 9) == 0, "ptsname is /dev/pts/N");
	unsigned int n = 999999;
	CHECK(ioctl(m, TIOCGPTN, &n) == 0 && (snprintf(path, sizeof path, "/dev/pts/%u", n), strcmp(path, name) == 0), "TIOCGPTN matches ptsname");
	int lk = -1;
	CHECK(ioctl(m, TIOCGPTLCK, &lk) == 0 && lk == 1, "slave starts locked");
	errno = 0;
	CHECK(open(name, O_RDWR | O_NOCTTY) == -1 && errno == EIO, "open of a locked slave is EIO");
	CHECK(unlockpt(m) == 0, "unlockpt");
	struct stat st;
	CHECK(stat(name, &st) == 0 && S_ISCHR(st.st_mode) && major(st.st_rdev) == 136 && minor(st.st_rdev) == n, "slave is char device 136:N");
	CHECK(st.st_uid == getuid() && (st.st_mode & 0600) == 0600, "slave owned by the opener, rw for the owner");
	int listed = 0;
	DIR *d = opendir("/dev/pts");
	struct dirent *e;
	while (d && (e = readdir(d)))
		listed |= strcmp(e->d_name, name + 9) == 0;
	if (d)
		closedir(d);
	CHECK(listed, "slave listed in /dev/pts");
	int s = open(name, O_RDWR | O_NOCTTY);
	CHECK(s >= 0, "open slave");
	CHECK(isatty(s) && isatty(m), "both ends are terminals");
	char *tn = ttyname(s);
	CHECK(tn && strcmp(tn, name) == 0, "ttyname of the slave");
	snprintf(path, sizeof path, "/proc/self/fd/%d", s);
	ssize_t l = readlink(path, link, sizeof link - 1);
	CHECK(l > 0 && (link[l] = 0, strcmp(link, name) == 0), "readlink /proc/self/fd of the slave");
	struct stat fst;
	CHECK(fstat(s, &fst) == 0 && fst.st_rdev == st.st_rdev && fst.st_ino == st.st_ino && fst.st_dev == st.st_dev, "fstat of the slave matches stat of its name");
	errno = 0;
	CHECK(ioctl(s, TIOCGPTN, &n) == -1 && errno == ENOTTY, "TIOCGPTN on the slave is ENOTTY");

	struct termios t;
	CHECK(tcgetattr(s, &t) == 0, "tcgetattr slave");
	printf("termios: iflag %#o oflag %#o cflag %#o lflag %#o speed %d\n", t.c_iflag, t.c_oflag, t.c_cflag, t.c_lflag, cfgetospeed(&t) == B38400);
	printf("cc: intr %d quit %d erase %d kill %d eof %d time %d min %d start %d stop %d susp %d eol %d reprint %d werase %d lnext %d\n",
	       t.c_cc[VINTR], t.c_cc[VQUIT], t.c_cc[VERASE], t.c_cc[VKILL], t.c_cc[VEOF], t.c_cc[VTIME], t.c_cc[VMIN], t.c_cc[VSTART],
	       t.c_cc[VSTOP], t.c_cc[VSUSP], t.c_cc[VEOL], t.c_cc[VREPRINT], t.c_cc[VWERASE], t.c_cc[VLNEXT]);
	struct termios mt;
	CHECK(tcgetattr(m, &mt) == 0 && mt.c_lflag == t.c_lflag && mt.c_iflag == t.c_iflag, "master reports the slave's termios");
	struct winsize ws;
	CHECK(ioctl(s, TIOCGWINSZ, &ws) == 0 && ws.ws_row == 0 && ws.ws_col == 0, "window size starts 0x0");

	int tp = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY);
	CHECK(tp >= 0 && (tn = ttyname(tp)) && strcmp(tn, name) == 0, "TIOCGPTPEER opens the slave");
	close(tp);
	close(s);
	close(m);
	errno = 0;
	CHECK(stat(name, &st) == -1 && errno == ENOENT, "slave node gone after the master closes");
}

static void canonical(void)
{
	char name[64], b[256];
	int m, s;
	CHECK(open_pair(&m, &s, name, sizeof name) == 0, "pair for canonical mode");
	struct pollfd p = {s, POLLIN | POLLOUT, 0};
	CHECK(poll(&p, 1, 0) == 1 && p.revents == POLLOUT, "fresh slave polls writable only");
	write(m, "abc", 3);
	expect_bytes(m, "echo of a partial line", "abc", 3);
	CHECK(!readable(s, 50), "partial line not readable");
	int n = -1;
	CHECK(ioctl(s, FIONREAD, &n) == 0 && n == 0, "FIONREAD 0 for a partial line");
	write(m, "\r", 1);
	expect_bytes(m, "CR echoed as CRLF", "\r\n", 2);
	CHECK(readable(s, 2000) && ioctl(s, FIONREAD, &n) == 0 && n == 4, "FIONREAD counts the line");
	int r = rd1(s, b, sizeof b);
	show("line read (ICRNL)", b, r);

	write(m, "l1\nl2\n", 6);
	expect_bytes(m, "echo of two lines", "l1\r\nl2\r\n", 8);
	r = rd1(s, b, sizeof b);
	show("first of two lines", b, r);
	r = rd1(s, b, 1);
	show("one byte of a line", b, r);
	r = rd1(s, b, sizeof b);
	show("rest of the line", b, r);

	write(m, "xy\x7fz\n", 5);
	expect_bytes(m, "erase echo", "xy\b \bz\r\n", 8);
	r = rd1(s, b, sizeof b);
	show("after erase", b, r);
	write(m, "junk\x15ok\n", 8);
	expect_bytes(m, "kill echo", "junk\b \b\b \b\b \b\b \bok\r\n", 20);
	r = rd1(s, b, sizeof b);
	show("after kill", b, r);
	write(m, "one two\x17three\n", 14);
	r = rd1(s, b, sizeof b);
	show("after word erase", b, r);
	rd(m, b, sizeof b, 100);
	write(m, "lit\x16\x03\n", 6);
	expect_bytes(m, "literal next echo", "lit^\b^C\r\n", 9);
	r = rd1(s, b, sizeof b);
	show("literal ^C kept", b, r);

	write(m, "\x04", 1);
	r = rd1(s, b, sizeof b);
	show("EOF on an empty line", b, r);
	write(m, "abc\x04", 4);
	r = rd1(s, b, sizeof b);
	show("EOF ends a line", b, r);
	write(m, "ab\x04", 3);
	r = rd1(s, b, 2);
	show("read ending at an EOF", b, r);
	fcntl(s, F_SETFL, O_NONBLOCK);
	errno = 0;
	r = (int)read(s, b, sizeof b);
	CHECK(r == -1 && errno == EAGAIN, "that EOF was consumed");
	rd(m, b, sizeof b, 100);

	/* ISIG without a foreground group: the input is flushed, ^C echoed. */
	write(m, "pending", 7);
	expect_bytes(m, "echo before ^C", "pending", 7);
	write(m, "\x03", 1);
	expect_bytes(m, "^C echoed", "^C", 2);
	errno = 0;
	CHECK(read(s, b, sizeof b) == -1 && errno == EAGAIN, "^C flushed the pending input");
	fcntl(s, F_SETFL, 0);

	/* ECHO off, ECHONL on. */
	struct termios t;
	tcgetattr(s, &t);
	t.c_lflag &= ~ECHO;
	t.c_lflag |= ECHONL;
	tcsetattr(s, TCSANOW, &t);
	write(m, "quiet\n", 6);
	expect_bytes(m, "ECHONL echoes only the newline", "\r\n", 2);
	r = rd1(s, b, sizeof b);
	show("line without echo", b, r);
	/* IGNCR and INLCR. */
	t.c_iflag = IGNCR | INLCR;
	t.c_lflag &= ~ECHONL;
	tcsetattr(s, TCSANOW, &t);
	write(m, "a\rb\n", 4);
	CHECK(!readable(s, 50), "INLCR: newline became CR, no line yet");
	t.c_iflag = IGNCR;
	tcsetattr(s, TCSANOW, &t);
	write(m, "\n", 1);
	r = rd1(s, b, sizeof b);
	show("IGNCR and INLCR", b, r);

	/* TCSAFLUSH drops unread input. */
	write(m, "dropped\n", 8);
	CHECK(readable(s, 2000), "line before TCSAFLUSH");
	tcsetattr(s, TCSAFLUSH, &t);
	CHECK(!readable(s, 50), "TCSAFLUSH dropped it");
	write(m, "dropped too\n", 12);
	CHECK(readable(s, 2000), "line before TCFLSH");
	CHECK(tcflush(s, TCIFLUSH) == 0 && !readable(s, 50), "tcflush(TCIFLUSH)");
	errno = 0;
	CHECK(tcflush(s, 7) == -1 && errno == EINVAL, "tcflush with a bad queue is EINVAL");
	CHECK(tcflow(s, TCOON) == 0 && tcdrain(s) == 0 && tcsendbreak(s, 0) == 0, "tcflow, tcdrain, tcsendbreak");

	/* Output processing. */
	write(s, "out\n", 4);
	expect_bytes(m, "ONLCR", "out\r\n", 5);
	t.c_oflag = OPOST | ONLCR | XTABS;
	tcsetattr(s, TCSANOW, &t);
	write(s, "a\tb\n", 4);
	expect_bytes(m, "XTABS", "a       b\r\n", 11);
	t.c_oflag = OPOST | OCRNL;
	tcsetattr(s, TCSANOW, &t);
	write(s, "c\rd\n", 4);
	expect_bytes(m, "OCRNL without ONLCR", "c\nd\n", 4);
	t.c_oflag = 0;
	tcsetattr(s, TCSANOW, &t);
	write(s, "raw\n", 4);
	expect_bytes(m, "no OPOST", "raw\n", 4);
	CHECK(ioctl(m, TIOCOUTQ, &n) == 0 && n == 0, "TIOCOUTQ");
	close(s);
	close(m);
}

static void raw_mode(void)
{
	char name[64], b[256];
	int m, s;
	CHECK(open_pair(&m, &s, name, sizeof name) == 0, "pair for raw mode");
	struct termios t;
	tcgetattr(s, &t);
	t.c_lflag &= ~ICANON;
	tcsetattr(s, TCSANOW, &t);
	write(m, "k\nl\r", 4);
	expect_bytes(m, "raw echo shows newline as ^J", "k^Jl\r\n", 6);
	int r = rd(s, b, 4, 2000);
	show("raw with ECHO and ICRNL", b, r);
	write(m, "pq", 2);
	expect_bytes(m, "echo pq", "pq", 2);
	readable(s, 2000);
	t.c_lflag |= ICANON;
	tcsetattr(s, TCSANOW, &t);
	r = rd1(s, b, sizeof b);
	show("raw data becomes a line in canonical mode", b, r);

	cfmakeraw(&t);
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	CHECK(tcsetattr(s, TCSANOW, &t) == 0, "cfmakeraw");
	tcgetattr(s, &t);
	printf("raw termios: iflag %#o oflag %#o lflag %#o cflag-size %#o\n", t.c_iflag, t.c_oflag, t.c_lflag, t.c_cflag & CSIZE);
	write(m, "\x03\x1a\x7fz\r", 5);
	r = rd(s, b, 5, 2000);
	show("raw bytes pass through", b, r);
	CHECK(!readable(m, 50), "no echo in raw mode");

	t.c_cc[VMIN] = 0;
	t.c_cc[VTIME] = 0;
	tcsetattr(s, TCSANOW, &t);
	CHECK(read(s, b, sizeof b) == 0, "VMIN 0 VTIME 0 with no data returns 0");
	t.c_cc[VTIME] = 1;
	tcsetattr(s, TCSANOW, &t);
	struct timeval a, z;
	gettimeofday(&a, NULL);
	r = (int)read(s, b, sizeof b);
	gettimeofday(&z, NULL);
	long ms = (z.tv_sec - a.tv_sec) * 1000 + (z.tv_usec - a.tv_usec) / 1000;
	CHECK(r == 0 && ms >= 50, "VMIN 0 VTIME 1 times out with 0");
	t.c_cc[VMIN] = 3;
	t.c_cc[VTIME] = 0;
	tcsetattr(s, TCSANOW, &t);
	write(m, "ab", 2);
	CHECK(!readable(s, 100), "poll waits for VMIN bytes");
	write(m, "c", 1);
	CHECK(readable(s, 2000), "poll readable at VMIN");
	r = (int)read(s, b, sizeof b);
	show("VMIN 3 read", b, r);
	t.c_cc[VMIN] = 5;
	t.c_cc[VTIME] = 1;
	tcsetattr(s, TCSANOW, &t);
	write(m, "xy", 2);
	r = (int)read(s, b, sizeof b);
	show("VMIN 5 VTIME 1: the inter-byte timer ends the read", b, r);

	fcntl(s, F_SETFL, O_NONBLOCK);
	fcntl(m, F_SETFL, O_NONBLOCK);
	errno = 0;
	CHECK(read(s, b, sizeof b) == -1 && errno == EAGAIN, "O_NONBLOCK slave read EAGAIN");
	errno = 0;
	CHECK(read(m, b, sizeof b) == -1 && errno == EAGAIN, "O_NONBLOCK master read EAGAIN");

	/* The queues are bounded: a non-blocking writer gets a short count, then EAGAIN. */
	static char big[200000];
	memset(big, 'x', sizeof big);
	ssize_t w = write(m, big, sizeof big);
	CHECK(w > 0 && w < (ssize_t)sizeof big, "master write stops at the input limit");
	long written = w;
	int again = 0;
	for (int i = 0; i < 50 && !again; i++) {
		errno = 0;
		ssize_t k = write(m, big, sizeof big);
		if (k == -1 && errno == EAGAIN)
			again = 1;
		else if (k > 0)
			written += k;
		usleep(2000);
	}
	CHECK(again, "then EAGAIN");
	long total = 0;
	for (int idle = 0; idle < 20;) {
		ssize_t k = read(s, big, sizeof big);
		if (k > 0) {
			total += k;
			idle = 0;
			/* Taking input makes room: the master's queue moves on. */
		} else {
			usleep(5000);
			idle++;
		}
	}
	CHECK(total == written, "the slave reads all that was written");
	ssize_t o = write(s, big, sizeof big);
	CHECK(o > 0 && o < (ssize_t)sizeof big, "slave write stops at the output limit");
	total = 0;
	for (int idle = 0; idle < 20;) {
		ssize_t k = read(m, big, sizeof big);
		if (k > 0) {
			total += k;
			idle = 0;
		} else {
			usleep(5000);
			idle++;
		}
	}
	CHECK(total == o, "the master reads all of it");
	close(s);
	close(m);
}

/* Blocking transfers both ways, 300000 bytes, with a reader in a child. */
static void blocking(void)
{
	char name[64];
	int m, s;
	CHECK(open_pair(&m, &s, name, sizeof name) == 0, "pair for blocking transfers");
	struct termios t;
	tcgetattr(s, &t);
	cfmakeraw(&t);
	tcsetattr(s, TCSANOW, &t);
	enum { N = 300000 };
	static char buf[N];
	for (int dir = 0; dir < 2; dir++) {
		int from = dir ? s : m, to = dir ? m : s;
		pid_t c = xfork();
		if (c == 0) {
			long got = 0, sum = 0;
			while (got < N) {
				ssize_t k = read(to, buf, sizeof buf);
				if (k <= 0)
					break;
				for (ssize_t i = 0; i < k; i++)
					sum += (unsigned char)buf[i];
				got += k;
			}
			_exit(got == N && sum == (long)N * 'y' ? 0 : 1);
		}
		memset(buf, 'y', sizeof buf);
		ssize_t w = write(from, buf, N);
		int st;
		waitpid(c, &st, 0);
		CHECK(w == N && WIFEXITED(st) && WEXITSTATUS(st) == 0, dir ? "blocking slave-to-master transfer" : "blocking master-to-slave transfer");
	}
	/* A blocked read is interrupted by a signal. */
	catch(SIGALRM, 0);
	struct itimerval it = {{0, 0}, {0, 50000}};
	setitimer(ITIMER_REAL, &it, NULL);
	char b[16];
	errno = 0;
	CHECK(read(s, b, sizeof b) == -1 && errno == EINTR && got_sig[SIGALRM], "blocked slave read interrupted by a signal");
	close(s);
	close(m);
}

/* A child in a session of its own with the slave as its controlling terminal. */
static void session(void)
{
	char name[64], b[256];
	int m, s;
	CHECK(open_pair(&m, &s, name, sizeof name) == 0, "pair for a session");
	errno = 0;
	CHECK(ioctl(s, TIOCGPGRP, &(pid_t){0}) == -1 && errno == ENOTTY, "TIOCGPGRP on a terminal that is not ours");
	pid_t fg = -1;
	CHECK(ioctl(m, TIOCGPGRP, &fg) == 0 && fg == 0, "master: no foreground group yet");
	int ready[2], go[2];
	pipe(ready);
	pipe(go);
	pid_t c = xfork();
	if (c == 0) {
		close(m);
		close(ready[0]);
		close(go[1]);
		pid_t nc = xfork();
		if (nc == 0) {
			errno = 0;
			int r = ioctl(s, TIOCSCTTY, 0);
			_exit(r == -1 && errno == EPERM ? 0 : 1);
		}
		int st;
		waitpid(nc, &st, 0);
		printf("child: TIOCSCTTY outside a session leader: %s\n", WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "EPERM" : "wrong");
		printf("child: setsid: %s\n", setsid() == getpid() ? "ok" : "FAIL");
		errno = 0;
		printf("child: /dev/tty without a terminal: %s\n", open("/dev/tty", O_RDWR) == -1 ? errname(errno) : "opened");
		printf("child: TIOCSCTTY: %s\n", ioctl(s, TIOCSCTTY, 0) == 0 ? "ok" : errname(errno));
		printf("child: foreground is our group: %s\n", tcgetpgrp(s) == getpgrp() ? "yes" : "no");
		printf("child: TIOCGSID is our session: %s\n", tcgetsid(s) == getsid(0) ? "yes" : "no");
		errno = 0;
		printf("child: TIOCSPGRP to no such group: %s\n", tcsetpgrp(s, 0x3ffffff0) == -1 ? errname(errno) : "ok");
		int tty = open("/dev/tty", O_RDWR);
		printf("child: /dev/tty opens: %s\n", tty >= 0 ? "yes" : errname(errno));
		if (tty >= 0)
			write(tty, "via /dev/tty\n", 13);
		catch(SIGINT, 1);
		catch(SIGQUIT, 1);
		catch(SIGTSTP, 1);
		catch(SIGWINCH, 1);
		fflush(stdout);
		write(ready[1], "r", 1);
		printf("child: SIGINT from ^C: %s\n", wait_sig(SIGINT) ? "yes" : "no");
		printf("child: SIGQUIT from ^\\: %s\n", wait_sig(SIGQUIT) ? "yes" : "no");
		printf("child: SIGTSTP from ^Z: %s\n", wait_sig(SIGTSTP) ? "yes" : "no");
		printf("child: SIGWINCH from a resize: %s\n", wait_sig(SIGWINCH) ? "yes" : "no");
		struct winsize ws;
		ioctl(s, TIOCGWINSZ, &ws);
		printf("child: window %dx%d\n", ws.ws_row, ws.ws_col);

		/* Job control from a background group of the session. */
		pid_t bg = xfork();
		if (bg == 0) {
			setpgid(0, 0);
			signal(SIGTTIN, SIG_IGN);
			errno = 0;
			int r = (int)read(s, b, 1);
			printf("background: read with SIGTTIN ignored: %s\n", r == -1 ? errname(errno) : "data");
			catch(SIGTTOU, 0);
			struct termios t;
			tcgetattr(s, &t);
			t.c_lflag |= TOSTOP;
			errno = 0;
			r = tcsetattr(s, TCSANOW, &t);
			printf("background: tcsetattr with a SIGTTOU handler: %s, SIGTTOU %s\n", r == -1 ? errname(errno) : "ok", got_sig[SIGTTOU] ? "caught" : "not caught");
			signal(SIGTTOU, SIG_IGN);
			r = tcsetattr(s, TCSANOW, &t);
			printf("background: tcsetattr with SIGTTOU ignored: %s\n", r == 0 ? "ok" : errname(errno));
			catch(SIGTTOU, 0);
			got_sig[SIGTTOU] = 0;
			errno = 0;
			r = (int)write(s, "x", 1);
			printf("background: TOSTOP write with a handler: %s, SIGTTOU %s\n", r == -1 ? errname(errno) : "written", got_sig[SIGTTOU] ? "caught" : "not caught");
			signal(SIGTTOU, SIG_IGN);
			printf("background: tcsetpgrp to itself: %s\n", tcsetpgrp(s, getpgrp()) == 0 ? "ok" : errname(errno));
			t.c_lflag &= ~TOSTOP;
			tcsetattr(s, TCSANOW, &t);
			fflush(stdout);
			_exit(0);
		}
		waitpid(bg, &st, 0);
		printf("child: foreground moved to the other group: %s\n", tcgetpgrp(s) != getpgrp() ? "yes" : "no");
		signal(SIGTTOU, SIG_IGN);
		printf("child: takes the foreground back: %s\n", tcsetpgrp(s, getpgrp()) == 0 ? "ok" : errname(errno));
		fflush(stdout);
		_exit(0);
	}
	close(ready[1]);
	close(go[0]);
	char r;
	CHECK(read(ready[0], &r, 1) == 1, "child session ready");
	expect_bytes(m, "write through /dev/tty", "via /dev/tty\r\n", 14);
	CHECK(ioctl(m, TIOCGPGRP, &fg) == 0 && fg == c, "master sees the child's group in the foreground");
	pid_t sid = -1;
	CHECK(ioctl(m, TIOCGSID, &sid) == 0 && sid == c, "master sees the child's session");
	write(m, "\x03", 1);
	expect_bytes(m, "^C echo", "^C", 2);
	write(m, "\x1c", 1);
	expect_bytes(m, "^\\ echo", "^\\", 2);
	write(m, "\x1a", 1);
	expect_bytes(m, "^Z echo", "^Z", 2);
	struct winsize ws = {30, 100, 0, 0};
	CHECK(ioctl(m, TIOCSWINSZ, &ws) == 0, "TIOCSWINSZ on the master");
	int st;
	waitpid(c, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "session child exits 0");
	CHECK(ioctl(m, TIOCGPGRP, &fg) == 0 && fg == 0, "session leader gone: no foreground group");
	close(ready[0]);
	close(go[1]);
	close(s);
	close(m);
}

/* Terminal stops: a background read (SIGTTIN) or TOSTOP write (SIGTTOU) at the default action
 * stops the job, which finishes the call once it is continued in the foreground; ^Z stops the
 * foreground job. A shell's view, from the session leader. */
static void stops(void)
{
	char name[64];
	int m, s;
	CHECK(open_pair(&m, &s, name, sizeof name) == 0, "pair for stops");
	pid_t c = xfork();
	if (c == 0) {
		/* Lines leave in the order the processes print them. */
		setvbuf(stdout, NULL, _IOLBF, 0);
		setsid();
		ioctl(s, TIOCSCTTY, 0);
		signal(SIGTTOU, SIG_IGN);
		int st;
		pid_t j = xfork();
		if (j == 0) {
			setpgid(0, 0);
			char b[16];
			ssize_t r = read(s, b, sizeof b);
			printf("job: read after SIGCONT in the foreground: %s\n", r == 3 && memcmp(b, "hi\n", 3) == 0 ? "ok" : "FAIL");
			fflush(stdout);
			_exit(0);
		}
		setpgid(j, j);
		waitpid(j, &st, WUNTRACED);
		printf("leader: background read stops the job: %s\n", WIFSTOPPED(st) && WSTOPSIG(st) == SIGTTIN ? "SIGTTIN" : "FAIL");
		tcsetpgrp(s, j);
		kill(-j, SIGCONT);
		waitpid(j, &st, WCONTINUED);
		printf("leader: continued: %s\n", WIFCONTINUED(st) ? "yes" : "FAIL");
		write(m, "hi\n", 3);
		waitpid(j, &st, 0);
		printf("leader: job exits: %s\n", WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "ok" : "FAIL");
		printf("leader: takes the foreground back: %s\n", tcsetpgrp(s, getpgrp()) == 0 ? "ok" : errname(errno));
		rd(m, (char[64]){0}, 64, 200);

		struct termios t;
		tcgetattr(s, &t);
		t.c_lflag |= TOSTOP;
		tcsetattr(s, TCSANOW, &t);
		j = xfork();
		if (j == 0) {
			setpgid(0, 0);
			signal(SIGTTOU, SIG_DFL);
			ssize_t r = write(s, "out\n", 4);
			printf("job: TOSTOP write after SIGCONT: %s\n", r == 4 ? "ok" : "FAIL");
			fflush(stdout);
			_exit(0);
		}
		setpgid(j, j);
		waitpid(j, &st, WUNTRACED);
		printf("leader: TOSTOP write stops the job: %s\n", WIFSTOPPED(st) && WSTOPSIG(st) == SIGTTOU ? "SIGTTOU" : "FAIL");
		tcsetpgrp(s, j);
		kill(-j, SIGCONT);
		waitpid(j, &st, 0);
		printf("leader: job exits: %s\n", WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "ok" : "FAIL");
		char b[16];
		int n = rd(m, b, 5, 2000);
		printf("leader: the write arrived: %s\n", n == 5 && memcmp(b, "out\r\n", 5) == 0 ? "ok" : "FAIL");
		tcsetpgrp(s, getpgrp());
		t.c_lflag &= ~TOSTOP;
		tcsetattr(s, TCSANOW, &t);

		j = xfork();
		if (j == 0) {
			setpgid(0, 0);
			for (;;)
				pause();
		}
		setpgid(j, j);
		tcsetpgrp(s, j);
		write(m, "\x1a", 1);
		waitpid(j, &st, WUNTRACED);
		printf("leader: ^Z stops the foreground job: %s\n", WIFSTOPPED(st) && WSTOPSIG(st) == SIGTSTP ? "SIGTSTP" : "FAIL");
		tcsetpgrp(s, getpgrp());
		kill(j, SIGKILL);
		waitpid(j, &st, 0);
		fflush(stdout);
		_exit(0);
	}
	int st;
	waitpid(c, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "stops: session leader exits 0");
	close(s);
	close(m);
}

/* ^C kills a foreground child that has no handler. */
static void intr_kills(void)
{
	char name[64];
	int m, s;
	CHECK(open_pair(&m, &s, name, sizeof name) == 0, "pair for ^C");
	int ready[2];
	pipe(ready);
	pid_t c = xfork();
	if (c == 0) {
		close(m);
		setsid();
		ioctl(s, TIOCSCTTY, 0);
		write(ready[1], "r", 1);
		for (;;)
			pause();
	}
	char r;
	close(ready[1]);
	read(ready[0], &r, 1);
	close(ready[0]);
	write(m, "\x03", 1);
	int st;
	waitpid(c, &st, 0);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGINT, "^C kills the foreground child with SIGINT");
	close(s);
	close(m);
}

/* Writes from memory that ends early: the bytes before the hole (Linux copies a tty write in
 * 2 KiB chunks), EFAULT when there are none; huge lengths are no problem. */
static void faults(void)
{
	char name[64];
	int m, s;
	CHECK(open_pair(&m, &s, name, sizeof name) == 0, "pair for faults");
	char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(p, 'f', 4096);
	munmap(p + 4096, 4096);
	CHECK(write(m, p, 8192) == 4096, "master write up to unmapped memory: the mapped part");
	errno = 0;
	CHECK(write(m, p + 4096, 10) == -1 && errno == EFAULT, "master write from unmapped memory: EFAULT");
	CHECK(write(s, p, 8192) == 4096, "slave write up to unmapped memory: the mapped part");
	errno = 0;
	CHECK(write(s, p + 4096, 10) == -1 && errno == EFAULT, "slave write from unmapped memory: EFAULT");
	errno = 0;
	CHECK(write(s, p, 0x7ffff000) == 4096, "slave write of 2 GiB from 4 KiB of memory: the 4 KiB");
	munmap(p, 4096);
	close(s);
	close(m);
}

/* Closing the master hangs the slave up. */
static void hangup(void)
{
	char name[64], b[16];
	int m, s;
	CHECK(open_pair(&m, &s, name, sizeof name) == 0, "pair for hangup");
	close(s);
	int ready[2];
	pipe(ready);
	pid_t c = xfork();
	if (c == 0) {
		close(m);
		close(ready[0]);
		setsid();
		/* A session leader without a terminal acquires the first it opens. */
		int fd = open(name, O_RDWR);
		printf("hangup child: open acquires the terminal: %s\n", fd >= 0 && tcgetsid(fd) == getpid() ? "yes" : "no");
		catch(SIGHUP, 1);
		catch(SIGCONT, 1);
		fflush(stdout);
		write(ready[1], "r", 1);
		printf("hangup child: SIGHUP: %s, SIGCONT: %s\n", wait_sig(SIGHUP) ? "yes" : "no", wait_sig(SIGCONT) ? "yes" : "no");
		printf("hangup child: read returns %d\n", (int)read(fd, b, sizeof b));
		errno = 0;
		int w = (int)write(fd, "x", 1);
		printf("hangup child: write: %s\n", w == -1 ? errname(errno) : "written");
		struct termios t;
		errno = 0;
		printf("hangup child: tcgetattr: %s\n", tcgetattr(fd, &t) == -1 ? errname(errno) : "ok");
		struct pollfd p = {fd, POLLIN | POLLOUT, 0};
		poll(&p, 1, 0);
		printf("hangup child: poll: in %d out %d hup %d err %d\n", !!(p.revents & POLLIN), !!(p.revents & POLLOUT), !!(p.revents & POLLHUP),
		       !!(p.revents & POLLERR));
		errno = 0;
		printf("hangup child: /dev/tty after the hangup: %s\n", open("/dev/tty", O_RDWR) == -1 ? errname(errno) : "opened");
		fflush(stdout);
		_exit(0);
	}
	close(ready[1]);
	char r;
	read(ready[0], &r, 1);
	close(ready[0]);
	close(m);
	int st;
	waitpid(c, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "hangup child exits 0");
}

/* Closing the slave: the master reads what is left, then EIO. */
static void slave_close(void)
{
	char name[64], b[64];
	int m = posix_openpt(O_RDWR | O_NOCTTY);
	grantpt(m);
	unlockpt(m);
	ptsname_r(m, name, sizeof name);
	struct pollfd p = {m, POLLIN | POLLOUT, 0};
	CHECK(poll(&p, 1, 0) == 1 && p.revents == POLLOUT, "master before the slave opens polls writable only");
	fcntl(m, F_SETFL, O_NONBLOCK);
	errno = 0;
	CHECK(read(m, b, sizeof b) == -1 && errno == EAGAIN, "master read before the slave opens is EAGAIN");
	fcntl(m, F_SETFL, 0);
	int s = open(name, O_RDWR | O_NOCTTY);
	write(s, "bye\n", 4);
	close(s);
	CHECK(readable(m, 2000), "output waits for the master");
	p.revents = 0;
	poll(&p, 1, 0);
	printf("master after the slave closed: in %d out %d hup %d\n", !!(p.revents & POLLIN), !!(p.revents & POLLOUT), !!(p.revents & POLLHUP));
	int r = (int)read(m, b, sizeof b);
	show("master reads the rest", b, r);
	errno = 0;
	CHECK(read(m, b, sizeof b) == -1 && errno == EIO, "then EIO");
	CHECK(write(m, "later", 5) == 5, "master writes still go in");
	s = open(name, O_RDWR | O_NOCTTY);
	CHECK(s >= 0, "the slave opens again");
	p.revents = 0;
	poll(&p, 1, 0);
	CHECK(!(p.revents & POLLHUP), "no more hangup on the master");
	close(s);
	close(m);
}

static void packet_mode(void)
{
	char name[64], b[64];
	int m, s;
	CHECK(open_pair(&m, &s, name, sizeof name) == 0, "pair for packet mode");
	int on = 1;
	CHECK(ioctl(m, TIOCPKT, &on) == 0, "TIOCPKT on");
	write(s, "x", 1);
	CHECK(readable(m, 2000), "packet readable");
	int r = (int)read(m, b, sizeof b);
	show("packet data", b, r);
	write(m, "line\n", 5);
	CHECK(readable(s, 2000), "line for the flush");
	r = (int)read(m, b, sizeof b);
	show("packet echo", b, r);
	tcflush(s, TCIFLUSH);
	CHECK(readable(m, 2000), "flush status readable");
	r = (int)read(m, b, sizeof b);
	show("packet flush status", b, r);
	close(s);
	close(m);
}

static void openpty_forkpty(void)
{
	int m, s;
	char name[64];
	struct winsize ws = {40, 132, 0, 0};
	CHECK(openpty(&m, &s, name, NULL, &ws) == 0, "openpty");
	struct winsize got;
	CHECK(ioctl(m, TIOCGWINSZ, &got) == 0 && got.ws_row == 40 && got.ws_col == 132, "openpty sets the window size");
	char *tn = ttyname(s);
	CHECK(tn && strcmp(tn, name) == 0, "openpty's name is the slave's");
	close(s);
	close(m);
	fflush(stdout);
	pid_t c = forkpty(&m, NULL, NULL, NULL);
	if (c == 0) {
		printf("in forkpty: %s %s\n", isatty(0) && isatty(1) ? "tty" : "notty", tcgetpgrp(0) == getpid() ? "fg" : "bg");
		fflush(stdout);
		_exit(0);
	}
	char b[128];
	int n = rd(m, b, 20, 2000);
	show("forkpty child output", b, n);
	int st;
	waitpid(c, &st, 0);
	errno = 0;
	for (int i = 0; i < 100 && read(m, b, sizeof b) > 0; i++)
		;
	CHECK(errno == EIO, "master EIO after the forkpty child exits");
	close(m);
}

int main(void)
{
	basics();
	canonical();
	raw_mode();
	blocking();
	session();
	stops();
	intr_kills();
	faults();
	hangup();
	slave_close();
	packet_mode();
	openpty_forkpty();
	printf("failures: %d\n", failures);
	return failures != 0;
}
