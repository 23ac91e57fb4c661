/* Checks that a NULL pointer write kills the process with SIGSEGV (exit status 139). */
#include <stdio.h>

int main(void)
{
	printf("before fault\n");
	fflush(stdout);
	*(volatile int *)0 = 42;
	printf("FAIL: survived NULL write\n");
	return 1;
}
