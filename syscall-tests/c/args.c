/* Checks argc/argv/envp passing: every argument, getenv of RVTEST_A/RVTEST_B, count of RVTEST_* env entries. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv, char **envp)
{
	printf("argc=%d\n", argc);
	for (int i = 0; i < argc; i++)
		printf("argv[%d]=\"%s\" len=%zu\n", i, argv[i], strlen(argv[i]));
	printf("argv[argc]==NULL: %s\n", argv[argc] == NULL ? "yes" : "no");

	const char *a = getenv("RVTEST_A");
	const char *b = getenv("RVTEST_B");
	const char *missing = getenv("RVTEST_NOT_SET");
	printf("RVTEST_A=%s\n", a ? a : "(null)");
	printf("RVTEST_B=%s\n", b ? b : "(null)");
	printf("RVTEST_NOT_SET=%s\n", missing ? missing : "(null)");

	int n = 0;
	for (char **e = envp; *e; e++)
		if (strncmp(*e, "RVTEST_", 7) == 0)
			n++;
	printf("RVTEST_ entries in envp: %d\n", n);
	return 0;
}
