/* Checks glibc malloc on top of brk and mmap: many sizes incl. >128 KiB (mmap-served), fill, checksum, free, realloc growth. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 512

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static size_t pick_size(void)
{
	uint64_t r = next();
	switch (r % 8) {
	case 0: return 1 + (r >> 8) % 16;
	case 1: case 2: case 3: return 1 + (r >> 8) % 512;
	case 4: case 5: return 1 + (r >> 8) % 8192;
	case 6: return 1 + (r >> 8) % 65536;
	default: return 128 * 1024 + (r >> 8) % (1024 * 1024); /* mmap threshold and above */
	}
}

int main(void)
{
	unsigned char *slot[SLOTS] = {0};
	size_t len[SLOTS] = {0};
	uint64_t sum = 0;
	unsigned long big = 0;

	for (int round = 0; round < 20000; round++) {
		int i = next() % SLOTS;
		if (slot[i]) {
			/* Verify the fill before freeing. */
			for (size_t k = 0; k < len[i]; k += 97)
				if (slot[i][k] != (unsigned char)(i + k)) {
					printf("FAIL: corruption in slot %d at %zu\n", i, k);
					return 1;
				}
			for (size_t k = 0; k < len[i]; k += 61)
				sum = sum * 31 + slot[i][k];
			free(slot[i]);
			slot[i] = NULL;
			continue;
		}
		size_t n = pick_size();
		if (n >= 128 * 1024)
			big++;
		slot[i] = malloc(n);
		if (!slot[i]) {
			printf("FAIL: malloc(%zu) returned NULL\n", n);
			return 1;
		}
		len[i] = n;
		for (size_t k = 0; k < n; k++)
			slot[i][k] = (unsigned char)(i + k);
	}
	for (int i = 0; i < SLOTS; i++)
		free(slot[i]);

	/* realloc growth: keep contents across moves, up to 16 MiB. */
	size_t n = 1;
	unsigned char *p = malloc(n);
	p[0] = 7;
	uint64_t rsum = 0;
	while (n < 16 * 1024 * 1024) {
		size_t m = n * 2 + 3;
		unsigned char *q = realloc(p, m);
		if (!q) {
			printf("FAIL: realloc(%zu) returned NULL\n", m);
			return 1;
		}
		if (q[n - 1] != (unsigned char)(n - 1 + 7)) {
			printf("FAIL: realloc lost data at size %zu\n", m);
			return 1;
		}
		for (size_t k = n; k < m; k++)
			q[k] = (unsigned char)(k + 7);
		p = q;
		n = m;
	}
	for (size_t k = 0; k < n; k += 4093)
		rsum += p[k];
	free(p);

	/* calloc must return zeroed memory, including recycled chunks. */
	for (int r = 0; r < 64; r++) {
		size_t cn = 1000 + r * 5000;
		unsigned char *c = calloc(cn, 1);
		for (size_t k = 0; k < cn; k++)
			if (c[k]) {
				printf("FAIL: calloc not zeroed\n");
				return 1;
			}
		memset(c, 0xab, cn);
		free(c);
	}

	printf("large allocations: %s\n", big > 0 ? "yes" : "no");
	printf("checksum=%016llx\n", (unsigned long long)sum);
	printf("realloc final size=%zu sum=%llu\n", n, (unsigned long long)rsum);
	printf("malloc ok\n");
	return 0;
}
