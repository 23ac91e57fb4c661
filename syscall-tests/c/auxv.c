/* Checks the auxiliary vector via getauxval: fixed values, presence of pointers, AT_EXECFN, AT_PLATFORM, AT_MINSIGSTKSZ. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>

#ifndef AT_MINSIGSTKSZ
#define AT_MINSIGSTKSZ 51
#endif

static int present(unsigned long type, unsigned long *val)
{
	errno = 0;
	*val = getauxval(type);
	return !(*val == 0 && errno == ENOENT);
}

static void show_value(const char *name, unsigned long type)
{
	unsigned long v;
	if (present(type, &v))
		printf("%s=%lu\n", name, v);
	else
		printf("%s missing\n", name);
}

static void show_nonzero(const char *name, unsigned long type)
{
	unsigned long v;
	present(type, &v);
	printf("%s non-zero: %s\n", name, v != 0 ? "yes" : "no");
}

int main(int argc, char **argv)
{
	(void)argc;
	show_value("AT_PAGESZ", AT_PAGESZ);
	show_value("AT_PHENT", AT_PHENT);
	show_value("AT_UID", AT_UID);
	show_value("AT_EUID", AT_EUID);
	show_value("AT_GID", AT_GID);
	show_value("AT_EGID", AT_EGID);
	show_value("AT_SECURE", AT_SECURE);
	show_value("AT_CLKTCK", AT_CLKTCK);
	show_nonzero("AT_RANDOM", AT_RANDOM);
	show_nonzero("AT_PHDR", AT_PHDR);
	show_nonzero("AT_PHNUM", AT_PHNUM);
	show_nonzero("AT_ENTRY", AT_ENTRY);
	show_nonzero("AT_HWCAP", AT_HWCAP);

	const char *execfn = (const char *)getauxval(AT_EXECFN);
	printf("AT_EXECFN present: %s\n", execfn ? "yes" : "no");
	printf("AT_EXECFN == argv[0]: %s\n",
	       execfn && strcmp(execfn, argv[0]) == 0 ? "yes" : "no");

	const char *platform = (const char *)getauxval(AT_PLATFORM);
	printf("AT_PLATFORM=%s\n", platform ? platform : "(missing)");

	unsigned long v;
	printf("AT_MINSIGSTKSZ present and non-zero: %s\n",
	       present(AT_MINSIGSTKSZ, &v) && v != 0 ? "yes" : "no");

	/* AT_RANDOM must point at 16 readable bytes. */
	const unsigned char *rnd = (const unsigned char *)getauxval(AT_RANDOM);
	if (rnd) {
		unsigned x = 0;
		for (int i = 0; i < 16; i++)
			x |= rnd[i];
		printf("AT_RANDOM readable: yes\n");
		(void)x;
	}
	return 0;
}
