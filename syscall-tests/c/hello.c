/* Checks the most basic path: static startup, printf to a pipe, exit 0. */
#include <stdio.h>

int main(void)
{
	printf("hello, world\n");
	return 0;
}
