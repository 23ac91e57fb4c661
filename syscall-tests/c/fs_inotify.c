/* Checks inotify: events for create/open/write/close/rename (matching cookies)/unlink/chmod/truncate/mkdir/rmdir in a fresh directory, coalescing, DELETE_SELF + IGNORED, rm_watch, IN_ONESHOT, IN_MASK_ADD, IN_ONLYDIR, poll/epoll readiness, nonblocking EAGAIN, EINVAL for a short buffer, FIONREAD. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int failures;

static const char *errname(int e)
{
	switch (e) {
	case 0: return "0";
	case EAGAIN: return "EAGAIN";
	case EBADF: return "EBADF";
	case EINVAL: return "EINVAL";
	case ENOTDIR: return "ENOTDIR";
	case ENOENT: return "ENOENT";
	case EEXIST: return "EEXIST";
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

static const struct { unsigned bit; const char *name; } bits[] = {
	{IN_ACCESS, "ACCESS"}, {IN_MODIFY, "MODIFY"}, {IN_ATTRIB, "ATTRIB"},
	{IN_CLOSE_WRITE, "CLOSE_WRITE"}, {IN_CLOSE_NOWRITE, "CLOSE_NOWRITE"},
	{IN_OPEN, "OPEN"}, {IN_MOVED_FROM, "MOVED_FROM"}, {IN_MOVED_TO, "MOVED_TO"},
	{IN_CREATE, "CREATE"}, {IN_DELETE, "DELETE"}, {IN_DELETE_SELF, "DELETE_SELF"},
	{IN_MOVE_SELF, "MOVE_SELF"}, {IN_UNMOUNT, "UNMOUNT"}, {IN_Q_OVERFLOW, "Q_OVERFLOW"},
	{IN_IGNORED, "IGNORED"}, {IN_ISDIR, "ISDIR"},
};

static int wd_names[64];
static uint32_t last_from_cookie;

/* Reads everything queued and prints one line per event: the watch's
 * label (not its number), the flags, the name; cookies as relations. */
static void drain(int in, const char *label)
{
	char buf[4096] __attribute__((aligned(8)));
	printf("-- %s\n", label);
	for (;;) {
		ssize_t n = read(in, buf, sizeof buf);
		if (n < 0) {
			if (errno != EAGAIN)
				printf("read: FAIL (errno %s)\n", errname(errno));
			return;
		}
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *e = (struct inotify_event *)p;
			char flags[256] = "";
			for (size_t i = 0; i < sizeof bits / sizeof bits[0]; i++)
				if (e->mask & bits[i].bit) {
					strcat(flags, flags[0] ? "|" : "");
					strcat(flags, bits[i].name);
				}
			int lbl = e->wd >= 0 && e->wd < 64 ? wd_names[e->wd] : '?';
			const char *cookie = "";
			if (e->mask & IN_MOVED_FROM) {
				last_from_cookie = e->cookie;
				cookie = e->cookie ? " cookie=set" : " cookie=0";
			} else if (e->mask & IN_MOVED_TO) {
				cookie = e->cookie && e->cookie == last_from_cookie ? " cookie=same" : " cookie=differs";
			} else if (e->cookie) {
				cookie = " cookie=unexpected";
			}
			printf("%c %s%s%s%s\n", lbl, flags, e->len ? " " : "", e->len ? e->name : "", cookie);
			if (e->len % 16 != 0 || (e->len && strlen(e->name) >= e->len))
				printf("bad len %u\n", e->len);
			p += sizeof *e + e->len;
		}
	}
}

static void put(const char *path, const char *data)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, data, strlen(data)) < 0)
		printf("put %s failed\n", path);
	close(fd);
}

int main(void)
{
	char dir[] = "/tmp/rvisor-inotify-XXXXXX";
	char path[256], path2[256], sub[256];
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	int in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	CHECK(in >= 0, "inotify_init1");
	CHECK(fcntl(in, F_GETFD) == FD_CLOEXEC, "cloexec");
	CHECK((fcntl(in, F_GETFL) & O_NONBLOCK) != 0, "nonblock");
	char small[8];
	errno = 0;
	CHECK(read(in, small, sizeof small) < 0 && errno == EAGAIN, "empty read EAGAIN");

	int wd = inotify_add_watch(in, dir, IN_ALL_EVENTS);
	CHECK(wd > 0, "add_watch dir");
	wd_names[wd & 63] = 'D';
	CHECK(inotify_add_watch(in, dir, IN_ALL_EVENTS) == wd, "same inode same wd");
	errno = 0;
	CHECK(inotify_add_watch(in, dir, IN_ALL_EVENTS | IN_MASK_CREATE) < 0 && errno == EEXIST, "IN_MASK_CREATE EEXIST");

	/* Poll readiness. */
	struct pollfd pfd = {in, POLLIN, 0};
	CHECK(poll(&pfd, 1, 0) == 0, "not readable when empty");
	snprintf(path, sizeof path, "%s/a", dir);
	int fd = open(path, O_RDWR | O_CREAT, 0600);
	CHECK(poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN), "readable after create");
	int avail = -1;
	CHECK(ioctl(in, FIONREAD, &avail) == 0 && avail == 2 * (16 + 16), "FIONREAD");
	errno = 0;
	CHECK(read(in, small, sizeof small) < 0 && errno == EINVAL, "short buffer EINVAL");
	write(fd, "x", 1);
	write(fd, "y", 1); /* coalesced with the first MODIFY */
	pread(fd, small, 1, 0);
	close(fd);
	drain(in, "create/write/read/close");

	/* A watch on the file itself as well. */
	snprintf(path2, sizeof path2, "%s/b", dir);
	int wf = inotify_add_watch(in, path, IN_ALL_EVENTS);
	CHECK(wf > 0 && wf != wd, "add_watch file");
	wd_names[wf & 63] = 'F';
	fd = open(path, O_RDONLY);
	read(fd, small, sizeof small);
	close(fd);
	chmod(path, 0644);
	truncate(path, 0);
	drain(in, "file and dir watches");
	put(path, "again"); /* O_TRUNC of an existing file */
	struct timespec ts[2] = {{1, 0}, {2, 0}};
	utimensat(AT_FDCWD, path, ts, 0);
	link(path, path2);
	unlink(path2);
	drain(in, "truncating open, utimes, link");
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	char dents[1024];
	syscall(SYS_getdents64, dfd, dents, sizeof dents);
	close(dfd);
	drain(in, "readdir");

	rename(path, path2);
	drain(in, "rename");
	put(path, "new");
	rename(path, path2); /* replaces b: F (watching old b) loses its last link */
	drain(in, "rename over");
	unlink(path2);
	drain(in, "unlink");

	/* Directories. */
	snprintf(sub, sizeof sub, "%s/sub", dir);
	mkdir(sub, 0700);
	int ws = inotify_add_watch(in, sub, IN_DELETE_SELF | IN_CREATE);
	wd_names[ws & 63] = 'S';
	int wadd = inotify_add_watch(in, sub, IN_ATTRIB | IN_MASK_ADD);
	CHECK(wadd == ws, "IN_MASK_ADD same wd");
	chmod(sub, 0755);
	int wm = inotify_add_watch(in, sub, IN_MOVE_SELF | IN_MASK_ADD);
	CHECK(wm == ws, "IN_MASK_ADD again");
	snprintf(path, sizeof path, "%s/sub2", dir);
	rename(sub, path);
	rename(path, sub);
	snprintf(path, sizeof path, "%s/sub/x", dir);
	put(path, "");
	unlink(path);
	rmdir(sub);
	drain(in, "mkdir/rmdir");

	errno = 0;
	CHECK(inotify_add_watch(in, path2, IN_ALL_EVENTS) < 0 && errno == ENOENT, "watch missing ENOENT");
	put(path2, "f");
	errno = 0;
	CHECK(inotify_add_watch(in, path2, IN_ALL_EVENTS | IN_ONLYDIR) < 0 && errno == ENOTDIR, "IN_ONLYDIR ENOTDIR");
	int wo = inotify_add_watch(in, path2, IN_OPEN | IN_ONESHOT);
	wd_names[wo & 63] = 'O';
	close(open(path2, O_RDONLY));
	close(open(path2, O_RDONLY));
	drain(in, "oneshot");

	/* rm_watch. */
	errno = 0;
	CHECK(inotify_rm_watch(in, 12345) < 0 && errno == EINVAL, "rm_watch bad wd EINVAL");
	CHECK(inotify_rm_watch(in, wd) == 0, "rm_watch");
	errno = 0;
	CHECK(inotify_rm_watch(in, wd) < 0 && errno == EINVAL, "rm_watch twice EINVAL");
	unlink(path2);
	drain(in, "after rm_watch");
	errno = 0;
	CHECK(inotify_add_watch(0x7fff, dir, IN_ALL_EVENTS) < 0 && errno == EBADF, "add_watch bad fd EBADF");
	int notin = open(dir, O_RDONLY | O_DIRECTORY);
	errno = 0;
	CHECK(inotify_add_watch(notin, dir, IN_ALL_EVENTS) < 0 && errno == EINVAL, "add_watch non-inotify fd EINVAL");
	close(notin);
	errno = 0;
	CHECK(inotify_add_watch(in, dir, 0) < 0 && errno == EINVAL, "empty mask EINVAL");

	/* epoll and a blocking read. */
	int in2 = inotify_init();
	CHECK(in2 >= 0 && fcntl(in2, F_GETFD) == 0, "inotify_init");
	int w2 = inotify_add_watch(in2, dir, IN_CREATE);
	wd_names[w2 & 63] = 'E';
	int ep = epoll_create1(0);
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 7}, got;
	epoll_ctl(ep, EPOLL_CTL_ADD, in2, &ev);
	CHECK(epoll_wait(ep, &got, 1, 0) == 0, "epoll idle");
	snprintf(path, sizeof path, "%s/c", dir);
	put(path, "c");
	CHECK(epoll_wait(ep, &got, 1, 1000) == 1 && got.data.u32 == 7, "epoll ready");
	char buf[256] __attribute__((aligned(8)));
	ssize_t n = read(in2, buf, sizeof buf);
	CHECK(n == 32 && strcmp(((struct inotify_event *)buf)->name, "c") == 0, "blocking read");
	unlink(path);
	errno = 0;
	CHECK(inotify_init1(0x12) < 0 && errno == EINVAL, "init1 bad flags EINVAL");

	/* IN_EXCL_UNLINK: no events for a child written after its unlink. */
	int in3 = inotify_init1(IN_NONBLOCK), in4 = inotify_init1(IN_NONBLOCK);
	int wx = inotify_add_watch(in3, dir, IN_MODIFY | IN_EXCL_UNLINK);
	int wy = inotify_add_watch(in4, dir, IN_MODIFY);
	snprintf(path, sizeof path, "%s/e", dir);
	fd = open(path, O_RDWR | O_CREAT, 0600);
	write(fd, "1", 1);
	wd_names[wx & 63] = 'X';
	drain(in3, "IN_EXCL_UNLINK, linked");
	wd_names[wy & 63] = 'Y';
	drain(in4, "no IN_EXCL_UNLINK, linked");
	unlink(path);
	write(fd, "2", 1);
	close(fd);
	wd_names[wx & 63] = 'X';
	drain(in3, "IN_EXCL_UNLINK, unlinked");
	wd_names[wy & 63] = 'Y';
	drain(in4, "no IN_EXCL_UNLINK, unlinked");
	close(in3);
	close(in4);

	rmdir(dir);
	close(ep);
	close(in2);
	close(in);
	printf("failures: %d\n", failures);
	return failures != 0;
}
