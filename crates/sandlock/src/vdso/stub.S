/*
 * sandlock's vDSO time stubs (x86-64), copied into the free space after the
 * vDSO image of every process of a sandbox run with `time_start`. The
 * vDSO's symbol table is patched so that clock_gettime, gettimeofday and
 * time resolve here; each stub calls the vDSO's own clock_gettime for a
 * MONOTONIC clock and adds the sandbox's offset, so a read stays in user
 * space. The sandbox's realtime is MONOTONIC + offset (see
 * docs/determinism.md), which the supervisor uses too when it answers the
 * same calls made as system calls.
 *
 * Position independent: the data block at the start holds the offset and
 * the distances from the block to the original functions, so the bytes do
 * not depend on where the vDSO is mapped.
 *
 * Regenerate the bytes of stub.rs (a unit test checks they match):
 *   as --64 -o stub.o stub.S && objcopy -O binary -j .text stub.o stub.bin
 */
	.intel_syntax noprefix
	.text
block:
off_sec:	.quad 0		/* sandbox realtime - MONOTONIC, seconds */
off_nsec:	.quad 0		/* ... and nanoseconds, 0 <= off_nsec < 1e9 */
tai_sec:	.quad 0		/* CLOCK_TAI - CLOCK_REALTIME, seconds */
rel_cgt:	.quad 0		/* original __vdso_clock_gettime - block */
rel_gtod:	.quad 0		/* original __vdso_gettimeofday - block */
		.quad 0

/* int clock_gettime(clockid_t clock, struct timespec *ts) */
	.globl stub_clock_gettime
stub_clock_gettime:
	endbr64
	cmp	edi, 0			/* CLOCK_REALTIME */
	je	.Lrealtime
	cmp	edi, 5			/* CLOCK_REALTIME_COARSE */
	je	.Lcoarse
	cmp	edi, 11			/* CLOCK_TAI */
	je	.Ltai
	lea	rax, [rip + block]	/* any other clock: the original */
	add	rax, [rip + rel_cgt]
	jmp	rax
.Lcoarse:
	mov	edi, 6			/* CLOCK_MONOTONIC_COARSE */
	push	0
	jmp	.Lshift
.Ltai:
	mov	edi, 1			/* CLOCK_MONOTONIC */
	push	qword ptr [rip + tai_sec]
	jmp	.Lshift
.Lrealtime:
	mov	edi, 1			/* CLOCK_MONOTONIC */
	push	0
.Lshift:
	push	rsi
	sub	rsp, 8
	lea	rax, [rip + block]
	add	rax, [rip + rel_cgt]
	call	rax
	add	rsp, 8
	pop	rsi
	pop	rcx			/* extra seconds (TAI) */
	test	eax, eax
	jnz	.Lcgt_out
	add	rcx, [rip + off_sec]
	add	[rsi], rcx
	mov	rcx, [rsi + 8]
	add	rcx, [rip + off_nsec]
	cmp	rcx, 1000000000
	jb	1f
	sub	rcx, 1000000000
	inc	qword ptr [rsi]
1:	mov	[rsi + 8], rcx
.Lcgt_out:
	ret

/* int gettimeofday(struct timeval *tv, struct timezone *tz) */
	.globl stub_gettimeofday
stub_gettimeofday:
	endbr64
	push	rdi
	push	rsi
	sub	rsp, 24			/* a timespec at [rsp] */
	mov	edi, 1			/* CLOCK_MONOTONIC */
	mov	rsi, rsp
	lea	rax, [rip + block]
	add	rax, [rip + rel_cgt]
	call	rax
	test	eax, eax
	jnz	.Lgtod_out
	mov	rdi, [rsp + 32]		/* tv */
	test	rdi, rdi
	jz	.Lgtod_tz
	mov	rax, [rsp]
	add	rax, [rip + off_sec]
	mov	rcx, [rsp + 8]
	add	rcx, [rip + off_nsec]
	cmp	rcx, 1000000000
	jb	2f
	sub	rcx, 1000000000
	inc	rax
2:	mov	[rdi], rax
	mov	rax, rcx
	xor	edx, edx
	mov	ecx, 1000
	div	rcx
	mov	[rdi + 8], rax
.Lgtod_tz:
	mov	rsi, [rsp + 24]		/* tz: the original fills it */
	test	rsi, rsi
	jz	.Lgtod_ok
	xor	edi, edi
	lea	rax, [rip + block]
	add	rax, [rip + rel_gtod]
	call	rax
	test	eax, eax
	jnz	.Lgtod_out
.Lgtod_ok:
	xor	eax, eax
.Lgtod_out:
	add	rsp, 40
	ret

/* time_t time(time_t *t): CLOCK_REALTIME_COARSE seconds, as the vDSO's */
	.globl stub_time
stub_time:
	endbr64
	push	rdi
	sub	rsp, 16			/* a timespec at [rsp] */
	mov	edi, 6			/* CLOCK_MONOTONIC_COARSE */
	mov	rsi, rsp
	lea	rax, [rip + block]
	add	rax, [rip + rel_cgt]
	call	rax
	mov	rax, [rsp]
	add	rax, [rip + off_sec]
	mov	rcx, [rsp + 8]
	add	rcx, [rip + off_nsec]
	cmp	rcx, 1000000000
	jb	3f
	inc	rax
3:	mov	rdi, [rsp + 16]
	test	rdi, rdi
	jz	4f
	mov	[rdi], rax
4:	add	rsp, 24
	ret
	.globl stub_end
stub_end:
