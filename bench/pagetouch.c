/* Benchmark: anonymous page-fault throughput; touches each 4 KiB page of a 256 MiB mapping, prints pages per second. */
#include <stdio.h>
#include <sys/mman.h>
#include <time.h>

#define SIZE (256UL << 20)
#define PG 4096UL

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int main(void)
{
	volatile unsigned char *p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	double t0 = now_s();
	for (unsigned long off = 0; off < SIZE; off += PG)
		p[off] = 1;
	double t1 = now_s();
	printf("%.0f\n", (SIZE / PG) / (t1 - t0));
	munmap((void *)p, SIZE);
	return 0;
}
