/* /sys/class/net as tools read it: the interfaces of the network namespace (the ledger's sandbox
 * shares the host's, so the lists agree) and their attributes that do not move (address, mtu,
 * ifindex, flags, type, operstate...), plus relations: ifindex agrees with if_nametoindex, the
 * statistics are numbers, uevent names the interface, the directory is read-only. Counters'
 * values are not printed (they change between the runs). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures;

static int read_attr(const char *ifname, const char *attr, char *buf, size_t len)
{
	char path[256];
	snprintf(path, sizeof path, "/sys/class/net/%s/%s", ifname, attr);
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, len - 1);
	int e = errno;
	close(fd);
	if (n < 0)
		return -e;
	buf[n] = 0;
	return (int)n;
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(void)
{
	DIR *d = opendir("/sys/class/net");
	if (!d) {
		printf("opendir: %s\n", strerror(errno));
		return 1;
	}
	char *names[64];
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < 64) {
		if (e->d_name[0] != '.')
			names[n++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof *names, cmp);
	int has_lo = 0;
	for (int i = 0; i < n; i++) {
		const char *ifn = names[i];
		has_lo |= strcmp(ifn, "lo") == 0;
		printf("%s:", ifn);
		const char *attrs[] = {"address", "addr_len", "broadcast", "mtu", "ifindex", "flags", "type", "operstate", "tx_queue_len"};
		for (size_t a = 0; a < sizeof attrs / sizeof *attrs; a++) {
			char buf[128];
			int r = read_attr(ifn, attrs[a], buf, sizeof buf);
			if (r < 0) {
				printf(" %s=err%d", attrs[a], -r);
				continue;
			}
			buf[strcspn(buf, "\n")] = 0;
			printf(" %s=%s", attrs[a], buf);
		}
		printf("\n");
		char buf[128];
		if (read_attr(ifn, "ifindex", buf, sizeof buf) > 0 && (unsigned)atoi(buf) != if_nametoindex(ifn)) {
			printf("  ifindex disagrees with if_nametoindex\n");
			failures++;
		}
		char want[64];
		snprintf(want, sizeof want, "INTERFACE=%s\n", ifn);
		if (read_attr(ifn, "uevent", buf, sizeof buf) <= 0 || !strstr(buf, want)) {
			printf("  uevent does not name it\n");
			failures++;
		}
		const char *stats[] = {"rx_bytes", "tx_bytes", "rx_packets", "tx_packets", "rx_errors", "tx_dropped"};
		for (size_t s = 0; s < sizeof stats / sizeof *stats; s++) {
			char p[64], *end;
			snprintf(p, sizeof p, "statistics/%s", stats[s]);
			if (read_attr(ifn, p, buf, sizeof buf) <= 0 || (strtoull(buf, &end, 10), *end != '\n')) {
				printf("  %s is not a number\n", p);
				failures++;
			}
		}
	}
	printf("lo listed: %s\n", has_lo ? "yes" : "no");
	failures += !has_lo;
	int fd = open("/sys/class/net/lo/ifindex", O_WRONLY);
	printf("write open of ifindex: %s\n", fd < 0 ? strerror(errno) : "allowed");
	if (fd >= 0)
		close(fd);
	char buf[16];
	printf("unknown interface: %s\n", read_attr("no-such-if0", "mtu", buf, sizeof buf) == -ENOENT ? "ENOENT" : "other");
	return failures ? 1 : 0;
}
