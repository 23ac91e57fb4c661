/* Checks mmap/mprotect/munmap/MAP_FIXED/mremap/madvise/brk semantics and EINVAL for invalid arguments. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096UL
static int failures;

static const char *errname(int e)
{
	switch (e) {
	case 0: return "0";
	case EINVAL: return "EINVAL";
	case ENOMEM: return "ENOMEM";
	case EFAULT: return "EFAULT";
	case EACCES: return "EACCES";
	case EPERM: return "EPERM";
	case EBADF: return "EBADF";
	case ENOENT: return "ENOENT";
	case EAGAIN: return "EAGAIN";
	case EEXIST: return "EEXIST";
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

int main(void)
{
	/* Anonymous private mapping: zero-filled, writable, readable. */
	unsigned char *p = mmap(NULL, 8 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(p != MAP_FAILED, "mmap anon");
	if (p == MAP_FAILED)
		return 1;
	CHECK(((uintptr_t)p & (PG - 1)) == 0, "mmap page aligned");
	int zero = 1;
	for (size_t i = 0; i < 8 * PG; i++)
		zero &= p[i] == 0;
	CHECK(zero, "mmap anon zero-filled");
	for (size_t i = 0; i < 8 * PG; i++)
		p[i] = (unsigned char)(i * 7);
	int same = 1;
	for (size_t i = 0; i < 8 * PG; i++)
		same &= p[i] == (unsigned char)(i * 7);
	CHECK(same, "mmap write/read");

	/* mprotect to read-only and back. */
	CHECK(mprotect(p, 8 * PG, PROT_READ) == 0, "mprotect PROT_READ");
	CHECK(p[5] == 35, "read after PROT_READ");
	CHECK(mprotect(p, 8 * PG, PROT_READ | PROT_WRITE) == 0, "mprotect back to RW");
	p[5] = 99;
	CHECK(p[5] == 99, "write after RW restored");

	/* Unmap a middle page, then MAP_FIXED a fresh one over the hole. */
	CHECK(munmap(p + 3 * PG, PG) == 0, "munmap middle page");
	unsigned char *f = mmap(p + 3 * PG, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	CHECK(f == p + 3 * PG, "mmap MAP_FIXED into hole");
	CHECK(f[0] == 0 && f[PG - 1] == 0, "MAP_FIXED page zero-filled");
	CHECK(p[2 * PG] == (unsigned char)(2 * PG * 7) && p[4 * PG] == (unsigned char)(4 * PG * 7),
	      "neighbours intact");
	/* MAP_FIXED over existing data replaces it. */
	f = mmap(p + 6 * PG, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	CHECK(f == p + 6 * PG && f[1] == 0, "MAP_FIXED replaces mapped page");

	/* mremap: grow (may move), contents preserved. */
	unsigned char *q = mremap(p, 8 * PG, 64 * PG, MREMAP_MAYMOVE);
	CHECK(q != MAP_FAILED, "mremap grow MAYMOVE");
	if (q == MAP_FAILED)
		return 1;
	CHECK(q[PG + 1] == (unsigned char)((PG + 1) * 7) && q[5] == 99, "mremap preserves contents");
	CHECK(q[63 * PG] == 0, "mremap grown tail zero");
	q[63 * PG] = 1;
	/* mremap: explicit move to a fixed new address. */
	unsigned char *dst = mmap(NULL, 64 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned char *m = mremap(q, 64 * PG, 64 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
	CHECK(m == dst, "mremap MREMAP_FIXED move");
	CHECK(m[63 * PG] == 1 && m[5] == 99, "moved contents preserved");
	/* Shrink in place. */
	CHECK(mremap(m, 64 * PG, 16 * PG, 0) == m, "mremap shrink in place");

	/* madvise(MADV_DONTNEED) zeroes private anonymous memory. */
	memset(m, 0x5a, 16 * PG);
	CHECK(madvise(m + 4 * PG, 4 * PG, MADV_DONTNEED) == 0, "madvise DONTNEED");
	CHECK(m[4 * PG] == 0 && m[8 * PG - 1] == 0, "DONTNEED range reads zero");
	CHECK(m[4 * PG - 1] == 0x5a && m[8 * PG] == 0x5a, "outside DONTNEED range intact");
	CHECK(munmap(m, 16 * PG) == 0, "munmap");

	/* PROT_NONE then mprotect to RW. */
	unsigned char *n = mmap(NULL, 2 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(n != MAP_FAILED, "mmap PROT_NONE");
	CHECK(mprotect(n, 2 * PG, PROT_READ | PROT_WRITE) == 0, "mprotect NONE->RW");
	n[PG] = 3;
	CHECK(n[PG] == 3 && n[0] == 0, "PROT_NONE region usable after mprotect");
	munmap(n, 2 * PG);

	/* brk via sbrk growth and shrink. */
	char *b0 = sbrk(0);
	CHECK(b0 != (void *)-1, "sbrk(0)");
	char *b1 = sbrk(1 << 20);
	CHECK(b1 == b0, "sbrk grow returns old break");
	char *b2 = sbrk(0);
	CHECK(b2 == b0 + (1 << 20), "break advanced by 1 MiB");
	int bz = 1;
	for (int i = 0; i < (1 << 20); i += 4096)
		bz &= b1[i] == 0;
	CHECK(bz, "new brk memory zero");
	memset(b1, 0x11, 1 << 20);
	CHECK(b1[(1 << 20) - 1] == 0x11, "brk memory writable");
	CHECK(sbrk(-(1 << 20)) == b2, "sbrk shrink");
	CHECK(sbrk(0) == b0, "break restored");

	/* Invalid arguments. */
	errno = 0;
	int r = munmap((char *)p + 1, PG);
	printf("munmap unaligned: ret=%d errno=%s\n", r, errname(errno));
	errno = 0;
	void *z = mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	printf("mmap len 0: %s errno=%s\n", z == MAP_FAILED ? "MAP_FAILED" : "mapped", errname(errno));
	errno = 0;
	r = mprotect((char *)b0 + 1, PG, PROT_READ);
	printf("mprotect unaligned: ret=%d errno=%s\n", r, errname(errno));
	errno = 0;
	z = mmap(NULL, PG, PROT_READ, MAP_ANONYMOUS, -1, 0); /* neither SHARED nor PRIVATE */
	printf("mmap no MAP_PRIVATE/SHARED: %s errno=%s\n", z == MAP_FAILED ? "MAP_FAILED" : "mapped", errname(errno));
	errno = 0;
	z = mmap(NULL, PG, PROT_READ, MAP_PRIVATE, 12345, 0); /* file mapping of a bad fd */
	printf("mmap bad fd: %s errno=%s\n", z == MAP_FAILED ? "MAP_FAILED" : "mapped", errname(errno));

	/* MAP_SHARED|MAP_ANONYMOUS: pages nobody touched before fork are shared
	 * too, and MADV_DONTNEED keeps their contents (shmem). */
	{
		volatile int *sh = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		CHECK(sh != MAP_FAILED, "mmap shared anon");
		sh[0] = 7;
		pid_t c = fork();
		if (c == 0) {
			sh[0] = 8;
			sh[PG / sizeof(int)] = 9; /* untouched before fork */
			_exit(0);
		}
		int st;
		waitpid(c, &st, 0);
		CHECK(sh[0] == 8 && sh[PG / sizeof(int)] == 9, "shared anon pages written by a child");
		CHECK(madvise((void *)sh, 4 * PG, MADV_DONTNEED) == 0 && sh[PG / sizeof(int)] == 9, "MADV_DONTNEED keeps shared contents");
		munmap((void *)sh, 4 * PG);
	}

	/* MAP_SHARED of a memory-backed file (memfd; tmpfs and /dev/shm are
	 * the same): the mapping and read/write see one set of pages, across
	 * fork, and ftruncate grows the file under it. */
	{
		int fd = memfd_create("mm", 0);
		CHECK(fd >= 0 && ftruncate(fd, 2 * PG) == 0, "memfd sized");
		volatile char *m = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		CHECK(m != MAP_FAILED, "mmap shared memfd");
		m[10] = 'x';
		char c = 0;
		CHECK(pread(fd, &c, 1, 10) == 1 && c == 'x', "store through the map is read()");
		CHECK(pwrite(fd, "y", 1, PG + 3) == 1 && m[PG + 3] == 'y', "write() shows in the map");
		pid_t ch = fork();
		if (ch == 0) {
			m[PG + 4] = 'z';
			_exit(0);
		}
		int st;
		waitpid(ch, &st, 0);
		CHECK(pread(fd, &c, 1, PG + 4) == 1 && c == 'z', "a child's store reaches the file");
		volatile char *ro = mmap(NULL, PG, PROT_READ, MAP_SHARED, fd, PG);
		CHECK(ro != MAP_FAILED && ro[4] == 'z', "second shared map at an offset");
		m[PG + 5] = 'w';
		CHECK(ro[5] == 'w', "maps of one file share pages");
		munmap((void *)ro, PG);
		munmap((void *)m, 2 * PG);
		printf("plain memfd seals %d\n", fcntl(fd, F_GET_SEALS));
		errno = 0;
		int r = fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE);
		printf("seal without MFD_ALLOW_SEALING: %d errno=%s\n", r, errname(errno));
		close(fd);

		fd = memfd_create("sealed", MFD_ALLOW_SEALING | MFD_CLOEXEC);
		CHECK(fd >= 0 && write(fd, "abcd", 4) == 4, "sealable memfd");
		printf("cloexec %d seals %d\n", fcntl(fd, F_GETFD) & FD_CLOEXEC, fcntl(fd, F_GET_SEALS));
		CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) == 0, "add shrink+grow seals");
		errno = 0;
		r = ftruncate(fd, 2);
		printf("shrink sealed: %d errno=%s\n", r, errname(errno));
		errno = 0;
		r = (int)pwrite(fd, "xyz", 3, 3);
		printf("grow sealed: %d errno=%s\n", r, errname(errno));
		CHECK(pwrite(fd, "X", 1, 0) == 1, "overwrite inside a size-sealed file");
		CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SEAL) == 0, "seal writes and seals");
		errno = 0;
		r = (int)write(fd, "q", 1);
		printf("write sealed: %d errno=%s\n", r, errname(errno));
		errno = 0;
		r = fcntl(fd, F_ADD_SEALS, F_SEAL_GROW);
		printf("add after F_SEAL_SEAL: %d errno=%s seals %d\n", r, errname(errno), fcntl(fd, F_GET_SEALS));
		close(fd);
		errno = 0;
		r = memfd_create("bad", 0x1000);
		printf("memfd bad flags: %d errno=%s\n", r, errname(errno));
	}

	printf("mman %s\n", failures ? "FAILED" : "ok");
	return failures ? 1 : 0;
}
