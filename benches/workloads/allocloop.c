/* allocloop N
 * N malloc + free of sizes spread over 4 KiB .. 1 MiB (a fixed pseudo-random
 * sequence), 16 blocks alive at a time, one byte written per page so the
 * memory is really faulted in. Large blocks go through mmap/munmap in glibc,
 * small ones through brk: both paths a memory limit has to watch. */
#include "common.h"
#include <stdint.h>

#define LIVE 16

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: allocloop N\n");
		return 2;
	}
	long n = parse_count(argv[1], "N");
	unsigned char *live[LIVE] = {0};
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	uint64_t sum = 0;
	long long t0 = now_ns();
	for (long i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		/* 4 KiB .. 1 MiB, log-uniform-ish: a page count from 1 to 256. */
		size_t pages = (size_t)1 << (x % 9);
		pages += (x >> 8) % pages;
		if (pages > 256)
			pages = 256;
		size_t size = pages * 4096;
		int slot = (int)(i % LIVE);
		free(live[slot]);
		unsigned char *p = malloc(size);
		if (p == NULL) {
			fprintf(stderr, "error: malloc(%zu) (iteration %ld): %s\n", size, i, strerror(errno));
			return 1;
		}
		for (size_t off = 0; off < size; off += 4096)
			p[off] = (unsigned char)i;
		sum += p[size - 4096];
		live[slot] = p;
	}
	for (int s = 0; s < LIVE; s++)
		free(live[s]);
	long long t1 = now_ns();
	if (sum == 0xffffffffffffffffULL)
		fprintf(stderr, "unreachable\n");
	report(n, t0, t1);
	return 0;
}
