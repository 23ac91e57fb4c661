/* Checks that a breakpoint instruction (int3) kills the process with SIGTRAP (exit status 133). */
#include <stdio.h>

int main(void)
{
	printf("before fault\n");
	fflush(stdout);
	__asm__ volatile("int3");
	printf("FAIL: survived int3\n");
	return 1;
}
