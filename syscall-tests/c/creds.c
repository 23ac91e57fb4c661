/* Credentials and file permissions: run as root, sets up files under a
 * fresh /tmp directory, then forks children that drop to uid/gid 1000
 * (supplementary groups 2000 and 1000) and report which operations the
 * kernel allows, by errno name. Also sethostname/uname in a child with a
 * UTS namespace of its own (natively; the sandbox is one already).
 * Prints no paths or pids, so native and sandboxed output compare. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_faccessat2
#define SYS_faccessat2 439
#endif

static char base[64];

static const char *ename(int e)
{
	switch (e) {
	case 0: return "ok";
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case EACCES: return "EACCES";
	case EEXIST: return "EEXIST";
	case EINVAL: return "EINVAL";
	case EISDIR: return "EISDIR";
	case ENOTDIR: return "ENOTDIR";
	case EFAULT: return "EFAULT";
	case ENOSYS: return "ENOSYS";
	default: return "other";
	}
}

/* Prints the outcome of a call returning -1 on error. */
static void report(const char *what, long r)
{
	printf("%s: %s\n", what, ename(r < 0 ? errno : 0));
}

static const char *p(const char *name)
{
	static char buf[4][128];
	static int i;
	i = (i + 1) % 4;
	snprintf(buf[i], sizeof buf[i], "%s/%s", base, name);
	return buf[i];
}

static long open_close(const char *path, int flags, int mode)
{
	int fd = open(path, flags, mode);
	if (fd >= 0)
		close(fd);
	return fd;
}

static void mkfile(const char *name, int mode, uid_t uid, gid_t gid)
{
	int fd = open(p(name), O_CREAT | O_WRONLY | O_TRUNC, 0600);
	if (fd < 0 || write(fd, "data\n", 5) != 5) {
		perror(name);
		exit(1);
	}
	close(fd);
	if (chown(p(name), uid, gid) || chmod(p(name), mode)) {
		perror(name);
		exit(1);
	}
}

static void mkdir_as(const char *name, int mode, uid_t uid, gid_t gid)
{
	if (mkdir(p(name), 0700) || chown(p(name), uid, gid) || chmod(p(name), mode)) {
		perror(name);
		exit(1);
	}
}

static void status_lines(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	if (!f) {
		printf("status: %s\n", ename(errno));
		return;
	}
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, "Uid:", 4) || !strncmp(line, "Gid:", 4) || !strncmp(line, "Groups:", 7) ||
		    !strncmp(line, "CapEff:", 7))
			fputs(line, stdout);
	fclose(f);
}

static void owner_of(const char *what, const char *path)
{
	struct stat st;
	if (stat(path, &st))
		printf("%s: %s\n", what, ename(errno));
	else
		printf("%s: uid %u gid %u mode %o\n", what, st.st_uid, st.st_gid, st.st_mode & 07777);
}

static int drop_to_user(void)
{
	gid_t groups[] = {2000, 1000};
	if (setgroups(2, groups) || setgid(1000) || setuid(1000)) {
		printf("drop: %s\n", ename(errno));
		return -1;
	}
	return 0;
}

static void as_user(void)
{
	if (drop_to_user())
		return;
	uid_t r, e, s;
	getresuid(&r, &e, &s);
	printf("resuid: %u %u %u\n", r, e, s);
	gid_t rg, eg, sg;
	getresgid(&rg, &eg, &sg);
	printf("resgid: %u %u %u\n", rg, eg, sg);
	gid_t list[8];
	int n = getgroups(8, list);
	printf("getgroups: %d:", n);
	for (int i = 0; i < n; i++)
		printf(" %u", list[i]);
	printf("\n");
	report("getgroups(1)", getgroups(1, list));
	printf("getgroups(0): %d\n", getgroups(0, NULL));
	status_lines();

	report("open f644 O_WRONLY", open_close(p("f644"), O_WRONLY, 0));
	report("open f644 O_RDONLY", open_close(p("f644"), O_RDONLY, 0));
	report("open f644 O_RDONLY|O_TRUNC", open_close(p("f644"), O_RDONLY | O_TRUNC, 0));
	report("open f600 O_RDONLY", open_close(p("f600"), O_RDONLY, 0));
	report("open priv O_RDONLY", open_close(p("priv"), O_RDONLY | O_DIRECTORY, 0));
	report("mkdir priv/sub", mkdir(p("priv/sub"), 0755));
	report("stat priv/x", access(p("priv/x"), F_OK));
	report("open priv/new O_CREAT", open_close(p("priv/new"), O_CREAT | O_WRONLY, 0644));
	report("chdir priv", chdir(p("priv")));
	report("mkdir in base (0755 root)", mkdir(p("newdir"), 0755));
	report("truncate f644", truncate(p("f644"), 0));
	report("access f644 R_OK", access(p("f644"), R_OK));
	report("access f644 W_OK", access(p("f644"), W_OK));
	report("access f644 X_OK", access(p("f644"), X_OK));
	report("access priv F_OK", access(p("priv"), F_OK));
	report("access priv/x F_OK", access(p("priv/x"), F_OK));
	report("chmod f644", chmod(p("f644"), 0777));
	report("chown f644", chown(p("f644"), 1000, 1000));
	report("utimes f644 now", utimensat(AT_FDCWD, p("f644"), NULL, 0));
	struct timespec ts[2] = {{1, 0}, {2, 0}};
	report("utimes sticky/rootf explicit", utimensat(AT_FDCWD, p("sticky/rootf"), ts, 0));
	report("utimes sticky/rootf now", utimensat(AT_FDCWD, p("sticky/rootf"), NULL, 0));
	char *argv[] = {"f644", NULL};
	report("execve f644", execve(p("f644"), argv, argv + 1));
	report("link f600", link(p("f600"), p("sticky/hard")));

	report("unlink sticky/rootf", unlink(p("sticky/rootf")));
	report("rename sticky/rootf", rename(p("sticky/rootf"), p("sticky/moved")));
	report("unlink sticky/userf", unlink(p("sticky/userf")));
	report("create sticky/mine", open_close(p("sticky/mine"), O_CREAT | O_WRONLY, 0640));
	owner_of("sticky/mine", p("sticky/mine"));
	report("create 0444 for write", open_close(p("sticky/ro"), O_CREAT | O_WRONLY | O_EXCL, 0444));
	report("reopen 0444 for write", open_close(p("sticky/ro"), O_WRONLY, 0));
	report("chmod own", chmod(p("sticky/mine"), 02755));
	owner_of("sticky/mine after chmod", p("sticky/mine"));
	report("chgrp own to 2000", chown(p("sticky/mine"), -1, 2000));
	report("chgrp own to 3000", chown(p("sticky/mine"), -1, 3000));
	report("create grp/f", open_close(p("grp/f"), O_CREAT | O_WRONLY, 0644));
	report("create sgid/f", open_close(p("sgid/f"), O_CREAT | O_WRONLY, 0644));
	owner_of("sgid/f", p("sgid/f"));
	report("mkdir sgid/d", mkdir(p("sgid/d"), 0755));
	owner_of("sgid/d", p("sgid/d"));

	report("setuid(0)", setuid(0));
	report("setgid(0)", setgid(0));
	report("seteuid(0)", seteuid(0));
	report("setgroups", setgroups(0, NULL));
	report("setresuid(1000,1000,1000)", setresuid(1000, 1000, 1000));
	report("sethostname", sethostname("x", 1));
	report("setdomainname", setdomainname("x", 1));
	report("kill(parent, 0)", kill(getppid(), 0));
}

/* Root with the effective uid switched away and back: the saved uid and
 * the capabilities come back with it. */
static void as_effective_user(void)
{
	report("seteuid(1000)", seteuid(1000));
	uid_t r, e, s;
	getresuid(&r, &e, &s);
	printf("resuid: %u %u %u\n", r, e, s);
	status_lines();
	report("open f600 as euid 1000", open_close(p("f600"), O_RDONLY, 0));
	report("access f600 R_OK (real root)", access(p("f600"), R_OK));
	report("faccessat2 f600 AT_EACCESS", syscall(SYS_faccessat2, AT_FDCWD, p("f600"), R_OK, AT_EACCESS));
	report("seteuid(0)", seteuid(0));
	report("open f600 as root again", open_close(p("f600"), O_RDONLY, 0));
	printf("setfsuid(1000): %d\n", setfsuid(1000));
	report("open f600 as fsuid 1000", open_close(p("f600"), O_RDONLY, 0));
	report("open f644 as fsuid 1000", open_close(p("f644"), O_RDONLY, 0));
	printf("setfsuid(-1): %d\n", setfsuid(-1));
	printf("setfsuid(0): %d\n", setfsuid(0));
	report("open f600 as fsuid 0", open_close(p("f600"), O_RDONLY, 0));
	report("setreuid(-1, 1000)", setreuid(-1, 1000));
	getresuid(&r, &e, &s);
	printf("resuid: %u %u %u\n", r, e, s);
	report("setresuid(0,0,0)", setresuid(0, 0, 0));
	report("setuid(1000)", setuid(1000));
	getresuid(&r, &e, &s);
	printf("resuid: %u %u %u\n", r, e, s);
	report("setreuid(0, -1)", setreuid(0, -1));
}

static void hostname(void)
{
	/* Natively the child gets a UTS namespace of its own so the host's
	 * name is never touched; the sandbox has no unshare and needs none. */
	if (unshare(CLONE_NEWUTS) && errno != ENOSYS) {
		printf("unshare: %s\n", ename(errno));
		return;
	}
	report("sethostname", sethostname("rvisor-creds-test", 17));
	char long_name[80];
	memset(long_name, 'a', sizeof long_name);
	report("sethostname 65", sethostname(long_name, 65));
	report("sethostname 64", sethostname(long_name, 64));
	report("sethostname -1", syscall(SYS_sethostname, long_name, -1));
	report("sethostname bad ptr", syscall(SYS_sethostname, 8L, 4));
	report("sethostname 0", sethostname("", 0));
	struct utsname u;
	uname(&u);
	printf("nodename after empty: [%s]\n", u.nodename);
	report("sethostname again", sethostname("rvisor-creds-test", 17));
	report("setdomainname", setdomainname("example.org", 11));
	uname(&u);
	printf("nodename: %s\ndomainname: %s\n", u.nodename, u.domainname);
	char buf[128] = {0};
	int fd = open("/proc/sys/kernel/hostname", O_RDONLY);
	if (fd >= 0) {
		if (read(fd, buf, sizeof buf - 1) < 0)
			buf[0] = 0;
		close(fd);
	}
	printf("proc hostname: %s", buf);
	setuid(1000);
	report("sethostname as 1000", sethostname("nope", 4));
}

static void in_child(void (*f)(void))
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		f();
		fflush(stdout);
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	printf("child exit: %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

int main(void)
{
	strcpy(base, "/tmp/creds-XXXXXX");
	if (!mkdtemp(base)) {
		perror("mkdtemp");
		return 1;
	}
	chmod(base, 0755);
	mkfile("f644", 0644, 0, 0);
	mkfile("f600", 0600, 0, 0);
	mkdir_as("priv", 0700, 0, 0);
	mkfile("priv/x", 0644, 0, 0);
	mkdir_as("sticky", 01777, 0, 0);
	mkfile("sticky/rootf", 0666, 0, 0);
	mkfile("sticky/userf", 0644, 1000, 1000);
	mkdir_as("grp", 0770, 0, 2000);
	mkdir_as("sgid", 02770, 0, 2000);

	printf("== user 1000\n");
	in_child(as_user);
	printf("== effective user\n");
	in_child(as_effective_user);
	printf("== hostname\n");
	in_child(hostname);

	const char *files[] = {"f644", "f600", "priv/x", "sticky/rootf", "sticky/moved", "sticky/userf", "sticky/mine",
			       "sticky/ro", "sticky/hard", "grp/f", "sgid/f"};
	for (size_t i = 0; i < sizeof files / sizeof *files; i++)
		unlink(p(files[i]));
	const char *dirs[] = {"priv/sub", "priv", "sticky", "grp", "sgid/d", "sgid", "newdir"};
	for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++)
		rmdir(p(dirs[i]));
	report("cleanup", rmdir(base));
	return 0;
}
