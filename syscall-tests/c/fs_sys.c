/* Checks /sys as programs read it: the CPU lists agree with sysconf(_SC_NPROCESSORS_ONLN/CONF), sched_getaffinity and the cpuN directories; transparent_hugepage/enabled has one choice selected; /sys is sysfs, read-only to writes, with /sys/fs/cgroup as a directory. Prints relations, not the host's numbers. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

static int failures;

#define YN(what, cond)                                           \
	do {                                                     \
		int c_ = (cond);                                 \
		printf("%s: %s\n", what, c_ ? "yes" : "no");     \
		if (!c_)                                         \
			failures++;                              \
	} while (0)

/* Counts the CPUs in a list such as "0-3,5\n"; -1 if malformed. */
static int count_list(const char *s)
{
	int n = 0;
	while (*s && *s != '\n') {
		char *end;
		long a = strtol(s, &end, 10);
		if (end == s)
			return -1;
		long b = a;
		if (*end == '-') {
			s = end + 1;
			b = strtol(s, &end, 10);
			if (end == s || b < a)
				return -1;
		}
		n += b - a + 1;
		s = end;
		if (*s == ',')
			s++;
	}
	return n;
}

static int read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = 0;
	return (int)n;
}

int main(void)
{
	char buf[256];
	int online = read_file("/sys/devices/system/cpu/online", buf, sizeof buf) > 0 ? count_list(buf) : -1;
	int possible = read_file("/sys/devices/system/cpu/possible", buf, sizeof buf) > 0 ? count_list(buf) : -1;
	int present = read_file("/sys/devices/system/cpu/present", buf, sizeof buf) > 0 ? count_list(buf) : -1;
	YN("online readable", online >= 1);
	YN("online ends with a newline", buf[0] && buf[strlen(buf) - 1] == '\n');
	YN("online == sysconf(_SC_NPROCESSORS_ONLN)", online == sysconf(_SC_NPROCESSORS_ONLN));
	YN("present >= online", present >= online);
	YN("possible >= present", possible >= present);
	cpu_set_t set;
	CPU_ZERO(&set);
	YN("sched_getaffinity works", sched_getaffinity(0, sizeof set, &set) == 0);
	YN("affinity == online", CPU_COUNT(&set) == online);

	int dirs = 0;
	DIR *d = opendir("/sys/devices/system/cpu");
	YN("cpu directory lists", d != NULL);
	struct dirent *e;
	while (d && (e = readdir(d)) != NULL) {
		char *end;
		if (strncmp(e->d_name, "cpu", 3) == 0 && e->d_name[3] >= '0' && e->d_name[3] <= '9') {
			strtol(e->d_name + 3, &end, 10);
			if (*end == 0)
				dirs++;
		}
	}
	if (d)
		closedir(d);
	YN("cpuN directories == present", dirs == present);
	YN("cpuN directories == sysconf(_SC_NPROCESSORS_CONF)", dirs == sysconf(_SC_NPROCESSORS_CONF));
	struct stat st;
	YN("cpu0/topology is a directory", stat("/sys/devices/system/cpu/cpu0/topology", &st) == 0 && S_ISDIR(st.st_mode));
	YN("core_id reads", read_file("/sys/devices/system/cpu/cpu0/topology/core_id", buf, sizeof buf) > 0);

	int n = read_file("/sys/kernel/mm/transparent_hugepage/enabled", buf, sizeof buf);
	char *open_b = strchr(buf, '['), *close_b = strchr(buf, ']');
	YN("thp enabled has one selected choice", n > 0 && open_b && close_b > open_b && strchr(open_b + 1, '[') == NULL);

	struct statfs sfs;
	YN("/sys is sysfs", statfs("/sys", &sfs) == 0 && sfs.f_type == 0x62656572);
	YN("/sys/fs/cgroup is a directory", stat("/sys/fs/cgroup", &st) == 0 && S_ISDIR(st.st_mode));
	YN("cpu list files are 0444", stat("/sys/devices/system/cpu/online", &st) == 0 && (st.st_mode & 0777) == 0444);
	errno = 0;
	YN("missing entry ENOENT", open("/sys/devices/system/cpu/nope", O_RDONLY) < 0 && errno == ENOENT);
	printf("failures: %d\n", failures);
	return failures != 0;
}
