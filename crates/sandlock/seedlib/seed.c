/* sandlock's seed library: getrandom() and getentropy() answered inside
 * the process, for a sandbox run with --random-seed.
 *
 * sandlock preloads this library (LD_PRELOAD) into the dynamically linked
 * programs of a seeded sandbox. The first call in a process takes a
 * 32-byte key from the sandbox's seeded getrandom stream (the system call,
 * which the supervisor answers); every later call draws ChaCha20 blocks
 * (RFC 8439) under that key without leaving the process. A forked child
 * finds its state wiped (MADV_WIPEONFORK) and takes a key of its own the
 * same way, so parent and child never share bytes. See
 * docs/determinism.md for the exact definition of the stream.
 *
 * Freestanding: no libc is needed (raw system calls, compiler atomics),
 * except __errno_location, which every libc has, to report an error. An
 * argument the library does not handle itself (unknown flags, a request
 * above 1 MiB) goes to the system call, as does every call while the key
 * is being taken by another thread.
 *
 * Built by crates/sandlock/build.rs: x86-64 only. */

typedef unsigned char u8;
typedef unsigned int u32;
typedef unsigned long u64;
typedef unsigned long size_t;
typedef long ssize_t;

#define EXPORT __attribute__((visibility("default")))

#define SYS_MMAP 9
#define SYS_MUNMAP 11
#define SYS_MADVISE 28
#define SYS_GETRANDOM 318
#define PROT_RW 3
#define MAP_PRIVATE_ANON 0x22
#define MADV_WIPEONFORK 18
#define PAGE 4096

#define GRND_KNOWN 7u
#define GRND_RANDOM_INSECURE 6u
#define LOCAL_MAX (1ul << 20)
#define EIO 5
#define EINTR 4

/* The stream id in nonce words 1-2 (docs/determinism.md: 0-3 are the
 * supervisor's streams). */
#define STREAM_ID 4u

extern int *__errno_location(void);

static long sys3(long n, long a, long b, long c)
{
	long r;
	__asm__ volatile("syscall"
			 : "=a"(r)
			 : "a"(n), "D"(a), "S"(b), "d"(c)
			 : "rcx", "r11", "memory");
	return r;
}

static long sys6(long n, long a, long b, long c, long d, long e, long f)
{
	long r;
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	__asm__ volatile("syscall"
			 : "=a"(r)
			 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return r;
}

/* The per-process state, on a page of its own that fork() wipes. */
struct state {
	/* 0: no key; 1: a thread is taking it; 2: ready. */
	u32 ready;
	u32 key[8];
	/* The next block of the stream. */
	u64 next;
};

/* The state page, mapped at the first call (NULL: not yet; 1: never). */
static struct state *page;
#define NEVER ((struct state *)1)

static u32 rotl(u32 x, int n)
{
	return (x << n) | (x >> (32 - n));
}

#define QR(a, b, c, d)                          \
	do {                                    \
		a += b; d ^= a; d = rotl(d, 16); \
		c += d; b ^= c; b = rotl(b, 12); \
		a += b; d ^= a; d = rotl(d, 8);  \
		c += d; b ^= c; b = rotl(b, 7);  \
	} while (0)

/* ChaCha20 block `n` of `key` (RFC 8439 section 2.3): the low 32 bits of
 * n are the block counter, the high 32 bits nonce word 0, and nonce words
 * 1-2 the stream id. */
static void block(const u32 key[8], u64 n, u8 out[64])
{
	u32 s[16], x[16];
	s[0] = 0x61707865;
	s[1] = 0x3320646e;
	s[2] = 0x79622d32;
	s[3] = 0x6b206574;
	for (int i = 0; i < 8; i++)
		s[4 + i] = key[i];
	s[12] = (u32)n;
	s[13] = (u32)(n >> 32);
	s[14] = STREAM_ID;
	s[15] = 0;
	for (int i = 0; i < 16; i++)
		x[i] = s[i];
	for (int r = 0; r < 10; r++) {
		QR(x[0], x[4], x[8], x[12]);
		QR(x[1], x[5], x[9], x[13]);
		QR(x[2], x[6], x[10], x[14]);
		QR(x[3], x[7], x[11], x[15]);
		QR(x[0], x[5], x[10], x[15]);
		QR(x[1], x[6], x[11], x[12]);
		QR(x[2], x[7], x[8], x[13]);
		QR(x[3], x[4], x[9], x[14]);
	}
	for (int i = 0; i < 16; i++) {
		u32 v = x[i] + s[i];
		out[4 * i] = (u8)v;
		out[4 * i + 1] = (u8)(v >> 8);
		out[4 * i + 2] = (u8)(v >> 16);
		out[4 * i + 3] = (u8)(v >> 24);
	}
}

/* The state page, or NULL where it cannot be had (then every call is the
 * system call). */
static struct state *state_page(void)
{
	struct state *p = __atomic_load_n(&page, __ATOMIC_ACQUIRE);
	if (p == NEVER)
		return 0;
	if (p)
		return p;
	long m = sys6(SYS_MMAP, 0, PAGE, PROT_RW, MAP_PRIVATE_ANON, -1, 0);
	if (m < 0 && m > -PAGE)
		return 0;
	if (sys3(SYS_MADVISE, m, PAGE, MADV_WIPEONFORK) != 0) {
		/* Without it a child would repeat its parent's bytes. */
		sys3(SYS_MUNMAP, m, PAGE, 0);
		__atomic_store_n(&page, NEVER, __ATOMIC_RELEASE);
		return 0;
	}
	struct state *expected = 0;
	if (!__atomic_compare_exchange_n(&page, &expected, (struct state *)m, 0,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		/* Another thread mapped one first. */
		sys3(SYS_MUNMAP, m, PAGE, 0);
		return expected == NEVER ? 0 : expected;
	}
	return (struct state *)m;
}

/* Whether `s` holds a key; takes one from the system call if nobody has. */
static int keyed(struct state *s)
{
	u32 r = __atomic_load_n(&s->ready, __ATOMIC_ACQUIRE);
	if (r == 2)
		return 1;
	u32 none = 0;
	if (r != 0 || !__atomic_compare_exchange_n(&s->ready, &none, 1, 0, __ATOMIC_ACQ_REL,
						   __ATOMIC_ACQUIRE))
		return 0;
	u8 k[32];
	long got = 0;
	while (got < 32) {
		long n = sys3(SYS_GETRANDOM, (long)(k + got), 32 - got, 0);
		if (n <= 0) {
			__atomic_store_n(&s->ready, 0, __ATOMIC_RELEASE);
			return 0;
		}
		got += n;
	}
	for (int i = 0; i < 8; i++)
		s->key[i] = (u32)k[4 * i] | (u32)k[4 * i + 1] << 8 | (u32)k[4 * i + 2] << 16 |
			    (u32)k[4 * i + 3] << 24;
	for (int i = 0; i < 32; i++)
		((volatile u8 *)k)[i] = 0;
	s->next = 0;
	__atomic_store_n(&s->ready, 2, __ATOMIC_RELEASE);
	return 1;
}

/* The system call, with errno set as libc would. */
static ssize_t syscall_getrandom(void *buf, size_t len, unsigned int flags)
{
	long r = sys3(SYS_GETRANDOM, (long)buf, (long)len, (long)flags);
	if (r < 0 && r > -PAGE) {
		*__errno_location() = (int)-r;
		return -1;
	}
	return r;
}

EXPORT ssize_t getrandom(void *buf, size_t len, unsigned int flags)
{
	if ((flags & ~GRND_KNOWN) || (flags & GRND_RANDOM_INSECURE) == GRND_RANDOM_INSECURE ||
	    len > LOCAL_MAX)
		return syscall_getrandom(buf, len, flags);
	if (len == 0)
		return 0;
	struct state *s = state_page();
	if (!s || !keyed(s))
		return syscall_getrandom(buf, len, flags);
	u64 blocks = (len + 63) / 64;
	u64 n = __atomic_fetch_add(&s->next, blocks, __ATOMIC_RELAXED);
	u8 *out = buf;
	size_t left = len;
	u8 b[64];
	while (left) {
		block(s->key, n++, b);
		size_t take = left < 64 ? left : 64;
		for (size_t i = 0; i < take; i++)
			out[i] = b[i];
		out += take;
		left -= take;
	}
	for (int i = 0; i < 64; i++)
		((volatile u8 *)b)[i] = 0;
	return (ssize_t)len;
}

EXPORT int getentropy(void *buf, size_t len)
{
	if (len > 256) {
		*__errno_location() = EIO;
		return -1;
	}
	u8 *p = buf;
	while (len) {
		ssize_t n = getrandom(p, len, 0);
		if (n < 0 && *__errno_location() == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}
