/* Checks that writing to a PROT_READ mapping kills the process with SIGSEGV (exit status 139). */
#include <stdio.h>
#include <sys/mman.h>

int main(void)
{
	volatile char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		printf("FAIL: mmap\n");
		return 1;
	}
	p[0] = 1;
	if (mprotect((void *)p, 4096, PROT_READ) != 0) {
		printf("FAIL: mprotect\n");
		return 1;
	}
	printf("read back %d\n", p[0]);
	fflush(stdout);
	p[0] = 2;
	printf("FAIL: survived write to read-only page\n");
	return 1;
}
