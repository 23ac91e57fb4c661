/* A large munmap really revokes access: touching any page of it afterwards is SIGSEGV (exit 139). */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

int main(void)
{
	size_t n = 256 * 4096;
	volatile char *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return 1;
	for (size_t i = 0; i < n; i += 4096)
		p[i] = 1;
	/* A large mprotect to read-only: reads still work. */
	if (mprotect((void *)p, n, PROT_READ) != 0)
		return 2;
	int sum = 0;
	for (size_t i = 0; i < n; i += 4096)
		sum += p[i];
	printf("sum %d\n", sum);
	fflush(stdout);
	if (munmap((void *)p, n) != 0)
		return 3;
	p[200 * 4096] = 2; /* must fault */
	printf("not reached\n");
	return 4;
}
