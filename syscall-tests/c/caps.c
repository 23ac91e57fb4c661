/* Capabilities: capget/capset, the bounding and ambient sets (prctl),
 * and what dropping a capability takes away (chown, kill, setuid). Run
 * as root; each case runs in a forked child. The host's own sets may
 * lack capabilities, so only the bits the test changes are printed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *ename(int e)
{
	switch (e) {
	case 0: return "ok";
	case EPERM: return "EPERM";
	case EINVAL: return "EINVAL";
	case EFAULT: return "EFAULT";
	case ESRCH: return "ESRCH";
	case EAGAIN: return "EAGAIN";
	default: return "other";
	}
}

static void report(const char *what, long r)
{
	printf("%s: %ld %s\n", what, r < 0 ? -1L : r, ename(r < 0 ? errno : 0));
	fflush(stdout);
}

static struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
static struct __user_cap_data_struct d[2];

static int get(void)
{
	hdr.version = _LINUX_CAPABILITY_VERSION_3;
	hdr.pid = 0;
	return syscall(SYS_capget, &hdr, d);
}

static int set(void)
{
	hdr.version = _LINUX_CAPABILITY_VERSION_3;
	hdr.pid = 0;
	return syscall(SYS_capset, &hdr, d);
}

static int has(unsigned set_word, int cap)
{
	(void)set_word;
	return (set_word >> cap) & 1;
}

static void show(const char *what, int cap)
{
	get();
	printf("  %s: eff %d prm %d inh %d\n", what, has(d[cap / 32].effective, cap % 32), has(d[cap / 32].permitted, cap % 32),
	       has(d[cap / 32].inheritable, cap % 32));
}

static void drop(int cap)
{
	get();
	d[cap / 32].effective &= ~(1u << (cap % 32));
	d[cap / 32].permitted &= ~(1u << (cap % 32));
	report("  capset drop", set());
}

static void wait_report(pid_t pid)
{
	int st;
	if (waitpid(pid, &st, 0) != pid)
		printf("  waitpid failed\n");
	else if (WIFEXITED(st))
		printf("  exit %d\n", WEXITSTATUS(st));
	else
		printf("  killed by %d\n", WTERMSIG(st));
	fflush(stdout);
}

#define CASE(name) \
	for (int once_ = (printf("%s\n", name), fflush(stdout), 1); once_; once_ = 0) \
		for (pid_t pid_ = fork(); pid_ >= 0 && once_; once_ = 0, pid_ ? wait_report(pid_) : exit(0)) \
			if (pid_ == 0)

static void status_line(const char *key)
{
	char line[256];
	FILE *f = fopen("/proc/self/status", "r");
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, key, strlen(key)) && line[strlen(key)] == ':')
			printf("  %s", line);
	if (f)
		fclose(f);
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "after-exec")) {
		show("after exec CAP_CHOWN", CAP_CHOWN);
		show("after exec CAP_KILL", CAP_KILL);
		show("after exec CAP_NET_BIND_SERVICE", CAP_NET_BIND_SERVICE);
		status_line("CapInh");
		status_line("CapAmb");
		return 0;
	}
	char file[64];
	snprintf(file, sizeof file, "/tmp/caps-test-%d", getpid());
	int fd = open(file, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	if (fd < 0) {
		perror("open");
		return 1;
	}
	close(fd);

	hdr.version = 0;
	report("capget bad version", syscall(SYS_capget, &hdr, d));
	printf("  version written back: %#x\n", hdr.version);
	hdr.version = _LINUX_CAPABILITY_VERSION_3;
	report("capget probe (NULL data)", syscall(SYS_capget, &hdr, NULL));
	hdr.version = _LINUX_CAPABILITY_VERSION_1;
	report("capget v1", syscall(SYS_capget, &hdr, d));
	hdr.pid = -5;
	hdr.version = _LINUX_CAPABILITY_VERSION_3;
	report("capget negative pid", syscall(SYS_capget, &hdr, d));
	report("capget bad data", syscall(SYS_capget, &(struct __user_cap_header_struct){ _LINUX_CAPABILITY_VERSION_3, 0 }, (void *)8));
	show("root CAP_CHOWN", CAP_CHOWN);
	show("root CAP_SETPCAP", CAP_SETPCAP);

	CASE("drop CAP_CHOWN") {
		drop(CAP_CHOWN);
		show("CAP_CHOWN", CAP_CHOWN);
		report("  chown to 1000", chown(file, 1000, 1000));
		report("  chown to the same owner", chown(file, 0, -1));
		get();
		d[0].effective |= 1u << CAP_CHOWN;
		report("  capset effective back", set());
		d[0].permitted |= 1u << CAP_CHOWN;
		report("  capset permitted back", set());
	}

	CASE("drop CAP_KILL") {
		pid_t victim = fork();
		if (victim == 0) {
			setuid(1001);
			pause();
			_exit(0);
		}
		usleep(100000);
		report("  kill(other user, 0) with CAP_KILL", kill(victim, 0));
		get();
		d[0].effective &= ~(1u << CAP_KILL);
		report("  capset effective without KILL", set());
		report("  kill(other user, 0) without", kill(victim, 0));
		get();
		d[0].effective |= 1u << CAP_KILL;
		report("  capset effective back", set());
		/* Root keeps the right to signal its own uid's processes. */
		report("  kill(self, 0)", kill(getpid(), 0));
		report("  kill(victim) with CAP_KILL again", kill(victim, SIGKILL));
		wait_report(victim);
		_exit(0);
	}

	CASE("drop CAP_SETUID") {
		drop(CAP_SETUID);
		report("  setuid(1000)", setuid(1000));
		report("  setuid(0)", setuid(0));
	}

	CASE("effective set only") {
		get();
		d[0].effective &= ~(1u << CAP_CHOWN);
		report("  capset effective without CHOWN", set());
		show("CAP_CHOWN", CAP_CHOWN);
		report("  chown to 1000", chown(file, 1000, 1000));
		d[0].effective |= 1u << CAP_CHOWN;
		report("  capset effective back", set());
		report("  chown to 1000", chown(file, 1000, 1000));
		chown(file, 0, 0);
	}

	CASE("other pid") {
		hdr.version = _LINUX_CAPABILITY_VERSION_3;
		hdr.pid = getppid();
		get();
		hdr.pid = getppid();
		report("  capset of the parent", syscall(SYS_capset, &hdr, d));
		hdr.pid = getppid();
		report("  capget of the parent", syscall(SYS_capget, &hdr, d));
	}

	CASE("bounding set") {
		report("  read CAP_CHOWN", prctl(PR_CAPBSET_READ, CAP_CHOWN, 0, 0, 0));
		report("  read 99", prctl(PR_CAPBSET_READ, 99, 0, 0, 0));
		report("  drop CAP_CHOWN", prctl(PR_CAPBSET_DROP, CAP_CHOWN, 0, 0, 0));
		report("  read CAP_CHOWN", prctl(PR_CAPBSET_READ, CAP_CHOWN, 0, 0, 0));
		report("  drop 99", prctl(PR_CAPBSET_DROP, 99, 0, 0, 0));
		show("CAP_CHOWN still", CAP_CHOWN);
		fflush(stdout);
		/* Root's exec takes the bounding set as its permitted set. */
		execl("/proc/self/exe", "caps", "after-exec", (char *)NULL);
		_exit(9);
	}

	CASE("bounding drop needs CAP_SETPCAP") {
		drop(CAP_SETPCAP);
		report("  drop CAP_KILL", prctl(PR_CAPBSET_DROP, CAP_KILL, 0, 0, 0));
		report("  read CAP_KILL", prctl(PR_CAPBSET_READ, CAP_KILL, 0, 0, 0));
	}

	CASE("inheritable and ambient") {
		report("  is_set NET_BIND_SERVICE", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_NET_BIND_SERVICE, 0, 0));
		report("  raise without inheritable", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0));
		get();
		d[0].inheritable |= 1u << CAP_NET_BIND_SERVICE | 1u << CAP_KILL;
		report("  capset inheritable", set());
		show("CAP_KILL", CAP_KILL);
		report("  raise", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0));
		report("  raise KILL", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_KILL, 0, 0));
		report("  is_set", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_NET_BIND_SERVICE, 0, 0));
		report("  is_set bad arg4", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_NET_BIND_SERVICE, 1, 0));
		report("  is_set cap 99", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, 99, 0, 0));
		report("  bad op", prctl(PR_CAP_AMBIENT, 9, 0, 0, 0));
		status_line("CapInh");
		status_line("CapAmb");
		report("  lower", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_LOWER, CAP_NET_BIND_SERVICE, 0, 0));
		report("  is_set", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_NET_BIND_SERVICE, 0, 0));
		/* Dropping KILL from inheritable takes it out of ambient. */
		get();
		d[0].inheritable &= ~(1u << CAP_KILL);
		report("  capset inheritable without KILL", set());
		report("  is_set KILL", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_KILL, 0, 0));
		report("  raise again", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0));
		report("  clear_all bad arg", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 1, 0, 0));
		report("  clear_all", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0));
		report("  is_set", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_NET_BIND_SERVICE, 0, 0));
		report("  raise again", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0));
		/* Leaving root drops everything, the ambient set too. */
		report("  setuid(1000)", setuid(1000));
		status_line("CapAmb");
		show("CAP_KILL as 1000", CAP_KILL);
	}

	CASE("no_new_privs: root's exec gains nothing back") {
		drop(CAP_KILL);
		prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
		fflush(stdout);
		execl("/proc/self/exe", "caps", "after-exec", (char *)NULL);
		_exit(9);
	}

	CASE("without no_new_privs: root's exec gets its bounding set back") {
		drop(CAP_KILL);
		fflush(stdout);
		execl("/proc/self/exe", "caps", "after-exec", (char *)NULL);
		_exit(9);
	}
	CASE("keepcaps: a non-root user keeps capabilities through ambient") {
		get();
		d[0].inheritable |= 1u << CAP_NET_BIND_SERVICE;
		report("  capset inheritable", set());
		report("  get keepcaps", prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0));
		report("  set keepcaps 2", prctl(PR_SET_KEEPCAPS, 2, 0, 0, 0));
		report("  set keepcaps", prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0));
		report("  get keepcaps", prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0));
		report("  setresuid(1000)", setresuid(1000, 1000, 1000));
		show("CAP_NET_BIND_SERVICE as 1000", CAP_NET_BIND_SERVICE);
		report("  raise ambient", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0));
		fflush(stdout);
		execl("/proc/self/exe", "caps", "after-exec", (char *)NULL);
		_exit(9);
	}

	CASE("without keepcaps leaving root drops the permitted set") {
		report("  setresuid(1000)", setresuid(1000, 1000, 1000));
		show("CAP_NET_BIND_SERVICE as 1000", CAP_NET_BIND_SERVICE);
	}
	unlink(file);
	return 0;
}
