/* Checks that an invalid opcode (ud2) kills the process with SIGILL (exit status 132). */
#include <stdio.h>

int main(void)
{
	printf("before fault\n");
	fflush(stdout);
	__asm__ volatile("ud2");
	printf("FAIL: survived ud2\n");
	return 1;
}
