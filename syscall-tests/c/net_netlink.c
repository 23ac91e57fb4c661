/* Checks NETLINK_ROUTE and interface queries, only for "lo" (the sandbox shares the host's network namespace, so nothing about other interfaces is printed): socket options and port ids, RTM_GETLINK dump and single requests, RTM_GETADDR dumps for 127.0.0.1/8 and ::1/128, ACKs and NLMSG_ERROR codes for bad requests, short and over-long nlmsg_len, MSG_PEEK|MSG_TRUNC sizing, getifaddrs, if_nametoindex/if_indextoname/if_nameindex, SIOCGIF* ioctls and SIOCGIFCONF, and /proc/net/dev. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <netpacket/packet.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

static int failures;

/* An address that is never mapped. */
#define BADPTR ((void *)16)

static const char *errname(int e)
{
	switch (e) {
	case 0: return "0";
	case EAGAIN: return "EAGAIN";
	case EBADF: return "EBADF";
	case EINTR: return "EINTR";
	case EINVAL: return "EINVAL";
	case EFAULT: return "EFAULT";
	case ENOENT: return "ENOENT";
	case ENOSYS: return "ENOSYS";
	case EPERM: return "EPERM";
	case EACCES: return "EACCES";
	case ENODEV: return "ENODEV";
	case ENXIO: return "ENXIO";
	case ENOTTY: return "ENOTTY";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case ENOPROTOOPT: return "ENOPROTOOPT";
	case EAFNOSUPPORT: return "EAFNOSUPPORT";
	case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
	case ESOCKTNOSUPPORT: return "ESOCKTNOSUPPORT";
	case ENOTCONN: return "ENOTCONN";
	case EISCONN: return "EISCONN";
	case EMSGSIZE: return "EMSGSIZE";
	case ENOBUFS: return "ENOBUFS";
	case ERANGE: return "ERANGE";
	case E2BIG: return "E2BIG";
	case EBUSY: return "EBUSY";
	case EEXIST: return "EEXIST";
	case ENODATA: return "ENODATA";
	case EADDRINUSE: return "EADDRINUSE";
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

#define CHECK_ERR(expr, err, what)                                          \
	do {                                                                \
		errno = 0;                                                  \
		long r_ = (long)(expr);                                     \
		int e_ = errno;                                             \
		if (r_ == -1 && e_ == (err))                                \
			printf("%s: %s\n", what, errname(e_));              \
		else {                                                      \
			printf("%s: FAIL (got %ld, errno %s, want %s)\n", what, r_, errname(e_), errname(err)); \
			failures++;                                         \
		}                                                           \
	} while (0)

static int finish(void)
{
	if (failures) {
		printf("%d failures\n", failures);
		return 1;
	}
	printf("all ok\n");
	return 0;
}

static int geti(int fd, int level, int opt)
{
	int v = -12345;
	socklen_t l = sizeof v;
	if (getsockopt(fd, level, opt, &v, &l) != 0 || l != sizeof v)
		return -12345;
	return v;
}

static int readable(int fd, int ms)
{
	struct pollfd p = { fd, POLLIN, 0 };
	return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

static uint32_t portid;
static char rbuf[1 << 16] __attribute__((aligned(8)));

/* Sends `len` bytes of `msg` to the kernel. */
static ssize_t nl_send(int fd, const void *msg, size_t len)
{
	struct sockaddr_nl k = { .nl_family = AF_NETLINK };
	return sendto(fd, msg, len, 0, (struct sockaddr *)&k, sizeof k);
}

/* Receives one datagram (waiting up to 5 s); returns its length, -1 with errno on error or timeout. */
static ssize_t nl_recv(int fd)
{
	if (!readable(fd, 5000)) {
		errno = EAGAIN;
		return -1;
	}
	struct sockaddr_nl from;
	struct iovec iov = { rbuf, sizeof rbuf };
	struct msghdr m = { .msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t r = recvmsg(fd, &m, 0);
	if (r >= 0 && (m.msg_namelen != sizeof from || from.nl_family != AF_NETLINK || from.nl_pid != 0 || (m.msg_flags & MSG_TRUNC))) {
		printf("unexpected sender or truncation\n");
		failures++;
	}
	return r;
}

static struct rtattr *find_attr(struct rtattr *rta, int len, int type)
{
	for (; RTA_OK(rta, len); rta = RTA_NEXT(rta, len))
		if (rta->rta_type == type)
			return rta;
	return NULL;
}

struct dump_result {
	int messages, done, bad_seq, bad_pid, errors;
	int error_code;
	/* lo */
	int lo_found, lo_index, lo_flags, lo_type, lo_mtu, lo_addr_zero, lo_addr_len;
	/* addresses on lo */
	int v4_found, v4_prefix, v4_scope, v4_label;
	int v6_found, v6_prefix;
};

static void walk(struct nlmsghdr *h, ssize_t len, uint32_t seq, struct dump_result *d)
{
	for (; NLMSG_OK(h, (size_t)len); h = NLMSG_NEXT(h, len)) {
		d->messages++;
		if (h->nlmsg_seq != seq)
			d->bad_seq++;
		if (h->nlmsg_pid != portid)
			d->bad_pid++;
		if (h->nlmsg_type == NLMSG_DONE) {
			d->done = 1;
			continue;
		}
		if (h->nlmsg_type == NLMSG_ERROR) {
			struct nlmsgerr *e = NLMSG_DATA(h);
			d->errors++;
			d->error_code = e->error;
			if (e->error == 0)
				d->done = 1; /* an ACK ends a request */
			continue;
		}
		if (h->nlmsg_type == RTM_NEWLINK) {
			struct ifinfomsg *ifi = NLMSG_DATA(h);
			int alen = (int)IFLA_PAYLOAD(h);
			struct rtattr *name = find_attr(IFLA_RTA(ifi), alen, IFLA_IFNAME);
			if (name && strcmp(RTA_DATA(name), "lo") == 0) {
				d->lo_found++;
				d->lo_index = ifi->ifi_index;
				d->lo_flags = (int)ifi->ifi_flags;
				d->lo_type = ifi->ifi_type;
				struct rtattr *mtu = find_attr(IFLA_RTA(ifi), alen, IFLA_MTU);
				if (mtu && RTA_PAYLOAD(mtu) == 4)
					memcpy(&d->lo_mtu, RTA_DATA(mtu), 4);
				struct rtattr *a = find_attr(IFLA_RTA(ifi), alen, IFLA_ADDRESS);
				if (a) {
					static const unsigned char zero[32];
					d->lo_addr_len = (int)RTA_PAYLOAD(a);
					d->lo_addr_zero = RTA_PAYLOAD(a) <= sizeof zero && memcmp(RTA_DATA(a), zero, RTA_PAYLOAD(a)) == 0;
				}
			}
		}
		if (h->nlmsg_type == RTM_NEWADDR) {
			struct ifaddrmsg *ifa = NLMSG_DATA(h);
			int alen = (int)IFA_PAYLOAD(h);
			if (ifa->ifa_index != 1)
				continue;
			struct rtattr *a = find_attr(IFA_RTA(ifa), alen, ifa->ifa_family == AF_INET ? IFA_LOCAL : IFA_ADDRESS);
			if (!a)
				a = find_attr(IFA_RTA(ifa), alen, IFA_ADDRESS);
			if (ifa->ifa_family == AF_INET && a && RTA_PAYLOAD(a) == 4) {
				struct in_addr in;
				memcpy(&in, RTA_DATA(a), 4);
				if (in.s_addr == htonl(INADDR_LOOPBACK)) {
					d->v4_found++;
					d->v4_prefix = ifa->ifa_prefixlen;
					d->v4_scope = ifa->ifa_scope;
					struct rtattr *lab = find_attr(IFA_RTA(ifa), alen, IFA_LABEL);
					d->v4_label = lab && strcmp(RTA_DATA(lab), "lo") == 0;
				}
			}
			if (ifa->ifa_family == AF_INET6 && a && RTA_PAYLOAD(a) == 16 && memcmp(RTA_DATA(a), &in6addr_loopback, 16) == 0) {
				d->v6_found++;
				d->v6_prefix = ifa->ifa_prefixlen;
			}
		}
	}
}

/* Reads datagrams until NLMSG_DONE, an ACK or an error. */
static int collect(int fd, uint32_t seq, struct dump_result *d)
{
	memset(d, 0, sizeof *d);
	for (int i = 0; i < 10000 && !d->done && !d->error_code; i++) {
		ssize_t r = nl_recv(fd);
		if (r <= 0)
			return -1;
		walk((struct nlmsghdr *)rbuf, r, seq, d);
	}
	return d->done || d->error_code ? 0 : -1;
}

struct link_req {
	struct nlmsghdr h;
	struct ifinfomsg i;
	char attrs[64];
};

static size_t link_req(struct link_req *q, uint16_t flags, uint32_t seq, int index, const char *name)
{
	memset(q, 0, sizeof *q);
	q->h.nlmsg_len = NLMSG_LENGTH(sizeof q->i);
	q->h.nlmsg_type = RTM_GETLINK;
	q->h.nlmsg_flags = NLM_F_REQUEST | flags;
	q->h.nlmsg_seq = seq;
	q->i.ifi_family = AF_UNSPEC;
	q->i.ifi_index = index;
	if (name) {
		struct rtattr *a = (struct rtattr *)((char *)q + NLMSG_ALIGN(q->h.nlmsg_len));
		a->rta_type = IFLA_IFNAME;
		a->rta_len = RTA_LENGTH(strlen(name) + 1);
		strcpy(RTA_DATA(a), name);
		q->h.nlmsg_len = NLMSG_ALIGN(q->h.nlmsg_len) + RTA_ALIGN(a->rta_len);
	}
	return q->h.nlmsg_len;
}

static void sockets(void)
{
	CHECK_ERR(socket(AF_NETLINK, SOCK_STREAM, NETLINK_ROUTE), ESOCKTNOSUPPORT, "socket(AF_NETLINK, SOCK_STREAM)");
	CHECK_ERR(socket(AF_NETLINK, SOCK_RAW, 99), EPROTONOSUPPORT, "socket(AF_NETLINK, SOCK_RAW, 99)");
	int d = socket(AF_NETLINK, SOCK_DGRAM, NETLINK_ROUTE);
	CHECK(d >= 0 && geti(d, SOL_SOCKET, SO_TYPE) == SOCK_DGRAM, "socket(AF_NETLINK, SOCK_DGRAM) works too");
	close(d);
}

static void link_dump(int fd)
{
	struct link_req q;
	struct dump_result d;
	size_t n = link_req(&q, NLM_F_DUMP, 100, 0, NULL);
	CHECK(nl_send(fd, &q, n) == (ssize_t)n, "getlink: send the RTM_GETLINK dump request");
	/* Size the first datagram the way libnl does: peek with a zero-length buffer. */
	CHECK(readable(fd, 5000), "getlink: the answer is readable");
	ssize_t first = recv(fd, NULL, 0, MSG_PEEK | MSG_TRUNC);
	CHECK(first >= (ssize_t)NLMSG_HDRLEN, "getlink: MSG_PEEK|MSG_TRUNC gives the datagram length");
	int avail = -1;
	CHECK_ERR(ioctl(fd, FIONREAD, &avail), ENOTTY, "getlink: FIONREAD on netlink");
	CHECK(collect(fd, 100, &d) == 0 && d.done && d.errors == 0, "getlink: dump ends with NLMSG_DONE");
	CHECK(d.bad_seq == 0 && d.bad_pid == 0, "getlink: every message has our seq and port id");
	printf("getlink: lo found %d time(s), index %d\n", d.lo_found, d.lo_index);
	printf("getlink: lo IFF_LOOPBACK %d IFF_UP %d, type ARPHRD_LOOPBACK %d\n", !!(d.lo_flags & IFF_LOOPBACK), !!(d.lo_flags & IFF_UP), d.lo_type == ARPHRD_LOOPBACK);
	printf("getlink: lo mtu %d, address %d bytes all zero %d\n", d.lo_mtu, d.lo_addr_len, d.lo_addr_zero);
	CHECK_ERR(recv(fd, rbuf, sizeof rbuf, MSG_DONTWAIT), EAGAIN, "getlink: nothing after NLMSG_DONE");

	/* One link by index, with an ACK asked for. */
	n = link_req(&q, NLM_F_ACK, 101, 1, NULL);
	CHECK(nl_send(fd, &q, n) == (ssize_t)n, "getlink 1: send");
	ssize_t r = nl_recv(fd);
	struct nlmsghdr *h = (struct nlmsghdr *)rbuf;
	CHECK(r > 0 && NLMSG_OK(h, (size_t)r) && h->nlmsg_type == RTM_NEWLINK && h->nlmsg_seq == 101 && !(h->nlmsg_flags & NLM_F_MULTI), "getlink 1: one RTM_NEWLINK");
	memset(&d, 0, sizeof d);
	if (r > 0)
		walk(h, r, 101, &d);
	printf("getlink 1: it is lo: %d\n", d.lo_found == 1 && d.lo_index == 1);
	r = nl_recv(fd);
	CHECK(r == NLMSG_LENGTH(sizeof(struct nlmsgerr)) && h->nlmsg_type == NLMSG_ERROR && ((struct nlmsgerr *)NLMSG_DATA(h))->error == 0 && h->nlmsg_seq == 101,
	      "getlink 1: then an ACK (NLMSG_ERROR 0) echoing the request header");
	if (r > 0) {
		struct nlmsgerr *e = NLMSG_DATA(h);
		CHECK(e->msg.nlmsg_type == RTM_GETLINK && e->msg.nlmsg_seq == 101 && e->msg.nlmsg_len == n, "getlink 1: the ACK carries our header");
	}

	/* By name, without an ACK. */
	n = link_req(&q, 0, 102, 0, "lo");
	CHECK(nl_send(fd, &q, n) == (ssize_t)n, "getlink lo: send");
	r = nl_recv(fd);
	memset(&d, 0, sizeof d);
	if (r > 0)
		walk(h, r, 102, &d);
	CHECK(d.lo_found == 1 && d.lo_index == 1 && d.messages == 1, "getlink lo: by IFLA_IFNAME");
	CHECK_ERR(recv(fd, rbuf, sizeof rbuf, MSG_DONTWAIT), EAGAIN, "getlink lo: no ACK unless asked");

	/* Errors. */
	n = link_req(&q, 0, 103, 0x7ffffff0, NULL);
	CHECK(nl_send(fd, &q, n) == (ssize_t)n, "getlink missing: send");
	CHECK(collect(fd, 103, &d) == 0, "getlink missing: answer");
	printf("getlink missing index: NLMSG_ERROR %s\n", errname(-d.error_code));
	n = link_req(&q, 0, 104, 0, "rvisor-nope0");
	CHECK(nl_send(fd, &q, n) == (ssize_t)n, "getlink missing name: send");
	CHECK(collect(fd, 104, &d) == 0, "getlink missing name: answer");
	printf("getlink missing name: NLMSG_ERROR %s\n", errname(-d.error_code));
}

static void addr_dump(int fd, int family, uint32_t seq)
{
	struct {
		struct nlmsghdr h;
		struct ifaddrmsg a;
	} q;
	memset(&q, 0, sizeof q);
	q.h.nlmsg_len = NLMSG_LENGTH(sizeof q.a);
	q.h.nlmsg_type = RTM_GETADDR;
	q.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	q.h.nlmsg_seq = seq;
	q.a.ifa_family = (unsigned char)family;
	const char *tag = family == AF_INET ? "getaddr v4" : "getaddr v6";
	char what[96];
	struct dump_result d;
	snprintf(what, sizeof what, "%s: dump", tag);
	CHECK(nl_send(fd, &q, q.h.nlmsg_len) == (ssize_t)q.h.nlmsg_len && collect(fd, seq, &d) == 0 && d.done && d.errors == 0, what);
	snprintf(what, sizeof what, "%s: seq and port id", tag);
	CHECK(d.bad_seq == 0 && d.bad_pid == 0, what);
	if (family == AF_INET)
		printf("%s: 127.0.0.1 on lo found %d time(s), prefix %d, scope host %d, label lo %d\n", tag, d.v4_found, d.v4_prefix, d.v4_scope == RT_SCOPE_HOST, d.v4_label);
	else
		printf("%s: ::1 on lo found %d time(s), prefix %d\n", tag, d.v6_found, d.v6_prefix);
}

/* Malformed requests: what comes back, if anything. */
static void bad_messages(int fd)
{
	struct dump_result d;
	struct {
		struct nlmsghdr h;
		char pad[64];
	} q;

	/* nlmsg_len smaller than the header: ignored. */
	memset(&q, 0, sizeof q);
	q.h.nlmsg_len = 8;
	q.h.nlmsg_type = RTM_GETLINK;
	q.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP | NLM_F_ACK;
	q.h.nlmsg_seq = 200;
	CHECK(nl_send(fd, &q, NLMSG_HDRLEN + sizeof(struct ifinfomsg)) == NLMSG_HDRLEN + sizeof(struct ifinfomsg), "bad: nlmsg_len 8 is sent");
	CHECK(!readable(fd, 200), "bad: nlmsg_len 8 gets no answer");
	/* nlmsg_len larger than the datagram: ignored. */
	q.h.nlmsg_len = 1000;
	CHECK(nl_send(fd, &q, NLMSG_HDRLEN + sizeof(struct ifinfomsg)) == NLMSG_HDRLEN + sizeof(struct ifinfomsg), "bad: nlmsg_len past the end is sent");
	CHECK(!readable(fd, 200), "bad: nlmsg_len past the end gets no answer");
	/* A datagram shorter than a header. */
	CHECK(nl_send(fd, &q, 4) == 4, "bad: 4-byte datagram is sent");
	CHECK(!readable(fd, 200), "bad: 4-byte datagram gets no answer");
	/* Without NLM_F_REQUEST: skipped, but acked when asked. */
	memset(&q, 0, sizeof q);
	q.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
	q.h.nlmsg_type = RTM_GETLINK;
	q.h.nlmsg_flags = NLM_F_ACK;
	q.h.nlmsg_seq = 201;
	CHECK(nl_send(fd, &q, q.h.nlmsg_len) == (ssize_t)q.h.nlmsg_len && collect(fd, 201, &d) == 0, "bad: no NLM_F_REQUEST");
	printf("bad: no NLM_F_REQUEST: %d message(s), ACK %d, error %s\n", d.messages, d.errors == 1 && d.error_code == 0, errname(-d.error_code));
	/* An unknown message type. */
	q.h.nlmsg_type = 0x7ff;
	q.h.nlmsg_flags = NLM_F_REQUEST;
	q.h.nlmsg_seq = 202;
	CHECK(nl_send(fd, &q, q.h.nlmsg_len) == (ssize_t)q.h.nlmsg_len && collect(fd, 202, &d) == 0, "bad: unknown type");
	printf("bad: unknown type: NLMSG_ERROR %s\n", errname(-d.error_code));
	/* A control message type (NLMSG_NOOP) with an ACK request. */
	q.h.nlmsg_type = NLMSG_NOOP;
	q.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	q.h.nlmsg_seq = 203;
	CHECK(nl_send(fd, &q, q.h.nlmsg_len) == (ssize_t)q.h.nlmsg_len && collect(fd, 203, &d) == 0, "bad: NLMSG_NOOP");
	printf("bad: NLMSG_NOOP with NLM_F_ACK: error %s\n", errname(-d.error_code));
	/* RTM_GETLINK (not a dump) without room for the ifinfomsg. */
	q.h.nlmsg_len = NLMSG_HDRLEN;
	q.h.nlmsg_type = RTM_GETLINK;
	q.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	q.h.nlmsg_seq = 204;
	CHECK(nl_send(fd, &q, q.h.nlmsg_len) == (ssize_t)q.h.nlmsg_len && collect(fd, 204, &d) == 0, "bad: header-only RTM_GETLINK");
	printf("bad: header-only RTM_GETLINK: %d message(s), error %s\n", d.messages, errname(-d.error_code));
	/* Two requests in one datagram: both are answered, in order. */
	struct link_req two[2];
	size_t n1 = link_req(&two[0], NLM_F_ACK, 205, 1, NULL);
	link_req(&two[1], NLM_F_ACK, 206, 1, NULL);
	memmove((char *)&two[0] + NLMSG_ALIGN(n1), &two[1], n1);
	CHECK(nl_send(fd, two, 2 * NLMSG_ALIGN(n1)) == (ssize_t)(2 * NLMSG_ALIGN(n1)), "batch: two requests in one datagram");
	int seen = 0, acks = 0;
	uint32_t order[4] = { 0 };
	while (seen < 4 && readable(fd, 5000)) {
		ssize_t r = recv(fd, rbuf, sizeof rbuf, 0);
		struct nlmsghdr *h = (struct nlmsghdr *)rbuf;
		for (; r > 0 && NLMSG_OK(h, (size_t)r); h = NLMSG_NEXT(h, r)) {
			if (seen < 4)
				order[seen] = h->nlmsg_seq * 10 + (h->nlmsg_type == NLMSG_ERROR);
			seen++;
			acks += h->nlmsg_type == NLMSG_ERROR && ((struct nlmsgerr *)NLMSG_DATA(h))->error == 0;
		}
	}
	printf("batch: %d messages, %d ACKs, order %u %u %u %u\n", seen, acks, order[0], order[1], order[2], order[3]);
	/* sendto a bad buffer. */
	CHECK_ERR(nl_send(fd, BADPTR, 32), EFAULT, "bad: send from a bad buffer");
	CHECK_ERR(recv(fd, rbuf, sizeof rbuf, MSG_DONTWAIT), EAGAIN, "bad: nothing left over");
}

static void ifaddrs(void)
{
	struct ifaddrs *ifa = NULL;
	CHECK(getifaddrs(&ifa) == 0, "getifaddrs");
	int v4 = 0, v6 = 0, pkt = 0, flags_ok = 1;
	for (struct ifaddrs *p = ifa; p; p = p->ifa_next) {
		if (strcmp(p->ifa_name, "lo") != 0 || !p->ifa_addr)
			continue;
		if (!(p->ifa_flags & IFF_LOOPBACK) || !(p->ifa_flags & IFF_UP))
			flags_ok = 0;
		if (p->ifa_addr->sa_family == AF_INET) {
			struct sockaddr_in *a = (void *)p->ifa_addr, *m = (void *)p->ifa_netmask;
			if (a->sin_addr.s_addr == htonl(INADDR_LOOPBACK) && m && m->sin_addr.s_addr == htonl(0xff000000))
				v4++;
		} else if (p->ifa_addr->sa_family == AF_INET6) {
			struct sockaddr_in6 *a = (void *)p->ifa_addr;
			if (memcmp(&a->sin6_addr, &in6addr_loopback, 16) == 0)
				v6++;
		} else if (p->ifa_addr->sa_family == AF_PACKET) {
			struct sockaddr_ll *l = (void *)p->ifa_addr;
			if (l->sll_ifindex == 1 && l->sll_hatype == ARPHRD_LOOPBACK)
				pkt++;
		}
	}
	printf("getifaddrs: lo has 127.0.0.1/8 %d, ::1 %d, AF_PACKET %d; flags UP|LOOPBACK %d\n", v4, v6, pkt, flags_ok);
	freeifaddrs(ifa);

	printf("if_nametoindex(\"lo\") = %u\n", if_nametoindex("lo"));
	char name[IF_NAMESIZE] = "";
	printf("if_indextoname(1) = %s\n", if_indextoname(1, name) ? name : "NULL");
	errno = 0;
	unsigned none = if_nametoindex("rvisor-nope0");
	printf("if_nametoindex(\"rvisor-nope0\") = %u, errno %s\n", none, errname(errno));
	struct if_nameindex *ni = if_nameindex();
	int lo = 0;
	for (struct if_nameindex *p = ni; p && p->if_index; p++)
		lo += p->if_index == 1 && strcmp(p->if_name, "lo") == 0;
	printf("if_nameindex: {1, lo} %d\n", lo);
	if (ni)
		if_freenameindex(ni);
}

static void ioctls(void)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq r;
	memset(&r, 0, sizeof r);
	strcpy(r.ifr_name, "lo");
	CHECK(ioctl(s, SIOCGIFFLAGS, &r) == 0, "SIOCGIFFLAGS lo");
	printf("SIOCGIFFLAGS lo: UP %d LOOPBACK %d RUNNING %d\n", !!(r.ifr_flags & IFF_UP), !!(r.ifr_flags & IFF_LOOPBACK), !!(r.ifr_flags & IFF_RUNNING));
	CHECK(ioctl(s, SIOCGIFINDEX, &r) == 0, "SIOCGIFINDEX lo");
	printf("SIOCGIFINDEX lo: %d\n", r.ifr_ifindex);
	CHECK(ioctl(s, SIOCGIFMTU, &r) == 0, "SIOCGIFMTU lo");
	printf("SIOCGIFMTU lo: %d\n", r.ifr_mtu);
	CHECK(ioctl(s, SIOCGIFADDR, &r) == 0, "SIOCGIFADDR lo");
	struct sockaddr_in *sin = (void *)&r.ifr_addr;
	printf("SIOCGIFADDR lo: family AF_INET %d, 127.0.0.1 %d\n", sin->sin_family == AF_INET, sin->sin_addr.s_addr == htonl(INADDR_LOOPBACK));
	CHECK(ioctl(s, SIOCGIFNETMASK, &r) == 0 && sin->sin_addr.s_addr == htonl(0xff000000), "SIOCGIFNETMASK lo: 255.0.0.0");
	CHECK(ioctl(s, SIOCGIFHWADDR, &r) == 0, "SIOCGIFHWADDR lo");
	static const char zero[6];
	printf("SIOCGIFHWADDR lo: ARPHRD_LOOPBACK %d, zero %d\n", r.ifr_hwaddr.sa_family == ARPHRD_LOOPBACK, memcmp(r.ifr_hwaddr.sa_data, zero, 6) == 0);
	memset(&r, 0, sizeof r);
	r.ifr_ifindex = 1;
	CHECK(ioctl(s, SIOCGIFNAME, &r) == 0 && strcmp(r.ifr_name, "lo") == 0, "SIOCGIFNAME 1 is lo");
	r.ifr_ifindex = 0x7ffffff0;
	CHECK_ERR(ioctl(s, SIOCGIFNAME, &r), ENODEV, "SIOCGIFNAME of a missing index");
	memset(&r, 0, sizeof r);
	strcpy(r.ifr_name, "rvisor-nope0");
	CHECK_ERR(ioctl(s, SIOCGIFFLAGS, &r), ENODEV, "SIOCGIFFLAGS of a missing interface");
	CHECK_ERR(ioctl(s, SIOCGIFINDEX, &r), ENODEV, "SIOCGIFINDEX of a missing interface");
	CHECK_ERR(ioctl(s, SIOCGIFFLAGS, BADPTR), EFAULT, "SIOCGIFFLAGS with a bad pointer");

	/* SIOCGIFCONF: first the size, then the list (one entry per IPv4 address). */
	struct ifconf ic = { .ifc_len = 0, .ifc_buf = NULL };
	CHECK(ioctl(s, SIOCGIFCONF, &ic) == 0, "SIOCGIFCONF with a NULL buffer");
	printf("SIOCGIFCONF size: positive %d, multiple of sizeof(struct ifreq) %d\n", ic.ifc_len > 0, ic.ifc_len % (int)sizeof(struct ifreq) == 0);
	int need = ic.ifc_len;
	struct ifreq *list = calloc(1, (size_t)need + sizeof(struct ifreq));
	ic.ifc_len = need + (int)sizeof(struct ifreq);
	ic.ifc_req = list;
	CHECK(ioctl(s, SIOCGIFCONF, &ic) == 0 && ic.ifc_len == need, "SIOCGIFCONF fills what it announced");
	int lo = 0;
	for (int i = 0; i < ic.ifc_len / (int)sizeof(struct ifreq); i++) {
		struct sockaddr_in *a = (void *)&list[i].ifr_addr;
		lo += strcmp(list[i].ifr_name, "lo") == 0 && a->sin_family == AF_INET && a->sin_addr.s_addr == htonl(INADDR_LOOPBACK);
	}
	printf("SIOCGIFCONF: lo 127.0.0.1 listed %d time(s)\n", lo);
	ic.ifc_len = (int)sizeof(struct ifreq);
	CHECK(ioctl(s, SIOCGIFCONF, &ic) == 0 && ic.ifc_len == (int)sizeof(struct ifreq), "SIOCGIFCONF with room for one entry returns one");
	free(list);
	close(s);
}

static void proc_net_dev(void)
{
	FILE *f = fopen("/proc/net/dev", "r");
	CHECK(f != NULL, "open /proc/net/dev");
	if (!f)
		return;
	char line[512];
	int n = 0, lo = 0, header = 0;
	while (fgets(line, sizeof line, f)) {
		n++;
		if (n == 1 && strncmp(line, "Inter-|", 7) == 0)
			header = 1;
		const char *p = line;
		while (*p == ' ')
			p++;
		if (strncmp(p, "lo:", 3) == 0)
			lo++;
	}
	fclose(f);
	printf("/proc/net/dev: header %d, lo: lines %d\n", header, lo);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	sockets();
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	CHECK(fd >= 0, "socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE)");
	CHECK(geti(fd, SOL_SOCKET, SO_TYPE) == SOCK_RAW, "SO_TYPE is SOCK_RAW");
	CHECK(geti(fd, SOL_SOCKET, SO_DOMAIN) == AF_NETLINK, "SO_DOMAIN is AF_NETLINK");
	CHECK(geti(fd, SOL_SOCKET, SO_PROTOCOL) == NETLINK_ROUTE, "SO_PROTOCOL is NETLINK_ROUTE");
	struct sockaddr_nl sa;
	socklen_t l = sizeof sa;
	memset(&sa, 0xff, sizeof sa);
	CHECK(getsockname(fd, (struct sockaddr *)&sa, &l) == 0 && l == sizeof sa && sa.nl_family == AF_NETLINK && sa.nl_pid == 0 && sa.nl_groups == 0,
	      "getsockname before bind: port id 0");
	CHECK_ERR(bind(fd, (struct sockaddr *)&sa, 4), EINVAL, "bind with addrlen 4");
	memset(&sa, 0, sizeof sa);
	sa.nl_family = AF_NETLINK;
	CHECK(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0, "bind with port id 0");
	l = sizeof sa;
	CHECK(getsockname(fd, (struct sockaddr *)&sa, &l) == 0 && sa.nl_pid != 0, "the kernel assigned a port id");
	portid = sa.nl_pid;
	printf("the first bound socket's port id is the process id: %d\n", portid == (uint32_t)getpid());
	{
		int other = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
		struct sockaddr_nl same = { .nl_family = AF_NETLINK, .nl_pid = portid };
		CHECK_ERR(bind(other, (struct sockaddr *)&same, sizeof same), EADDRINUSE, "bind another socket to the same port id");
		struct sockaddr_nl o;
		CHECK_ERR(nl_send(other, "", 0), ENODATA, "sendto of 0 bytes");
		struct nlmsghdr noop = { .nlmsg_len = sizeof noop, .nlmsg_type = NLMSG_NOOP };
		l = sizeof o;
		CHECK(nl_send(other, &noop, sizeof noop) == sizeof noop && getsockname(other, (struct sockaddr *)&o, &l) == 0 && o.nl_pid != 0 && o.nl_pid != portid,
		      "sendto autobinds a different port id");
		CHECK(!readable(other, 100), "a NLMSG_NOOP without flags gets no answer");
		close(other);
	}
	l = sizeof sa;
	CHECK(getpeername(fd, (struct sockaddr *)&sa, &l) == 0 && sa.nl_pid == 0, "getpeername is the kernel");
	CHECK(geti(fd, SOL_SOCKET, SO_RCVBUF) > 0, "SO_RCVBUF positive");
	link_dump(fd);
	addr_dump(fd, AF_INET, 300);
	addr_dump(fd, AF_INET6, 301);
	bad_messages(fd);
	close(fd);
	ifaddrs();
	ioctls();
	proc_net_dev();
	return finish();
}
