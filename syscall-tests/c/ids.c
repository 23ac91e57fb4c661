/* Checks process identity syscalls; prints only booleans (pids differ between runs). */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void)
{
	printf("getuid==geteuid: %s\n", getuid() == geteuid() ? "true" : "false");
	printf("getgid==getegid: %s\n", getgid() == getegid() ? "true" : "false");
	printf("getpid>0: %s\n", getpid() > 0 ? "true" : "false");
	printf("gettid==getpid: %s\n", (pid_t)syscall(SYS_gettid) == getpid() ? "true" : "false");
	printf("getppid>=0: %s\n", getppid() >= 0 ? "true" : "false");
	printf("getpid stable: %s\n", getpid() == (pid_t)syscall(SYS_getpid) ? "true" : "false");
	return 0;
}
