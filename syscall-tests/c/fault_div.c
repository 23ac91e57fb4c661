/* Checks that integer division by zero kills the process with SIGFPE (exit status 136). */
#include <stdio.h>

int main(void)
{
	volatile int a = 7, b = 0;
	printf("before fault\n");
	fflush(stdout);
	volatile int c = a / b;
	printf("FAIL: survived divide by zero (%d)\n", c);
	return 1;
}
