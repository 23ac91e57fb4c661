/* A large mprotect to PROT_READ revokes write access on every page (write faults: exit 139). */
#include <stdio.h>
#include <sys/mman.h>

int main(void)
{
	size_t n = 256 * 4096;
	volatile char *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return 1;
	for (size_t i = 0; i < n; i += 4096)
		p[i] = 1;
	if (mprotect((void *)p, n, PROT_READ) != 0)
		return 2;
	printf("protected\n");
	fflush(stdout);
	p[100 * 4096] = 2; /* must fault */
	printf("not reached\n");
	return 3;
}
