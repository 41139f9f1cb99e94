# ActorStep demo guest -- ppc64le, Power ISA v3.0 subset, 4 vcpus.
#
# A tiny "kernel" that is meant to be fun to poke at with gdb:
#   * vcpu 0 prints a title, switches interrupts to little-endian and turns
#     on AIL=3 (H_SET_MODE), then releases the other vcpus (ail_ready flag).
#   * every vcpu moves itself to relocation-on addresses (0xC000...) with
#     rfid, prints a banner and enters worker_loop with MSR[EE]=1.
#   * worker_loop: lwarx/stwcx. spinlock around a shared 64-bit counter,
#     a Collatz-ish leaf function, a system call every 16 iterations,
#     H_CEDE / H_PROD between vcpus 3 and 2, a heartbeat line from vcpu 0.
#   * vcpu 1 single-steps traced_function (MSR[SE]) every 4 iterations; the
#     Trace handler logs every SRR0 into trace_log[64].
#   * decrementer handler counts ticks[cpu] and reloads DEC.
# The guest never stops by itself.
#
# Memory map (real addresses; code runs at 0xC000000000000000 + address
# once relocation is on):
#   0x0000          b _start (only so that address 0 is not garbage)
#   0x0100-0x0F00   real-mode vectors: 0x900/0xC00/0xD00 branch to the
#                   handlers below, the rest stop the vcpu (unexpected_interrupt)
#   0x1000          unexpected_interrupt
#   0x4100-0x4F00   AIL=3 vectors (0xC000000000004000 + vector): dec_handler
#                   at 0x4900, syscall_handler at 0x4C00, trace_handler at 0x4D00
#   0x5000          _start and the rest of the code
#   .data           (next 4 KiB boundary) locks, counter, per-cpu arrays, strings
#   .bss            paca[4] (256 bytes each), stacks[4] (16 KiB each)
#
# Register conventions (ELFv2-like): r1 = stack (0xC000... EA), r13 = this
# vcpu's paca (0xC000... EA, also kept in SPRG0), r31 = vcpu index in the
# long-running code. Interrupt handlers use SPRG1 to save r13 and a per-vcpu
# save area in the paca; they save and restore everything they touch
# (including CR) and return with rfid.

	.set	NR_CPUS, 4
	.set	STACK_SHIFT, 14			# 16 KiB stacks
	.set	PACA_SHIFT, 8			# 256-byte paca per vcpu
	.set	DEC_RELOAD, 50000		# instructions between decrementer ticks
	.set	FRAME, 112			# initial stack frame size

	# SPR numbers
	.set	SPRN_DEC, 22
	.set	SPRN_SRR0, 26
	.set	SPRN_SRR1, 27
	.set	SPRN_SPRG0, 272			# this vcpu's paca (EA)
	.set	SPRN_SPRG1, 273			# r13 scratch in handlers
	.set	SPRN_SPRG2, 274			# r3 scratch in unexpected_interrupt
	.set	SPRN_PIR, 1023

	# MSR bits (low 16 bits; SF is set at reset and never touched)
	.set	MSR_EE, 0x8000
	.set	MSR_SE, 0x0400
	.set	MSR_IR, 0x0020
	.set	MSR_DR, 0x0010

	# hypercalls (sc 1)
	.set	H_SET_MODE, 0x31C
	.set	H_CEDE, 0xE0
	.set	H_PROD, 0x108
	.set	H_PUT_TERM_CHAR, 0x58
	.set	H_ACTORSTEP_STOP, 0xF080	# > 0x7fff: load with li 0 + ori!

	# system calls (sc, r0 = number)
	.set	SYS_INC, 1			# r3 = r3 + 1
	.set	SYS_GETCPU, 2			# r3 = vcpu index

	# paca layout
	.set	PACA_IDX, 0x00			# vcpu index
	.set	PACA_DEC_SAVE, 0x10		# r3, r4, cr
	.set	PACA_TRACE_SAVE, 0x30		# r3, r4, r5, cr
	.set	PACA_SC_SAVE, 0x50		# r4, r5, cr

	# stop status codes
	.set	STOP_TOO_MANY_CPUS, 1
	.set	STOP_SET_MODE_FAILED, 2

# reg <- low (real) address of sym; works in real mode and, because
# EAs with top nibble 0 map 1:1, with relocation on as well.
.macro LOADADDR reg, sym
	lis	\reg, \sym@h
	ori	\reg, \reg, \sym@l
.endm

# reg <- 0xC000000000000000 + sym (the "kernel" EA of sym).
.macro LOADKADDR reg, sym
	lis	\reg, -16384			# 0xffffffffc0000000
	sldi	\reg, \reg, 32			# 0xc000000000000000
	oris	\reg, \reg, \sym@h
	ori	\reg, \reg, \sym@l
.endm

# Fatal stub for vectors we do not expect: r3 is parked in SPRG2.
.macro VEC_FATAL vec
	.org	\vec
	mtspr	SPRN_SPRG2, r3
	li	r3, \vec
	b	unexpected_interrupt
.endm

	.abiversion 2
	.text
	.org	0
zero_vector:
	b	_start

	VEC_FATAL 0x100				# system reset
	VEC_FATAL 0x200				# machine check
	VEC_FATAL 0x300				# DSI
	VEC_FATAL 0x400				# ISI
	VEC_FATAL 0x500				# external
	VEC_FATAL 0x600				# alignment
	VEC_FATAL 0x700				# program (e.g. the tdne in worker_loop)
	VEC_FATAL 0x800				# FP unavailable
	.org	0x900				# real-mode decrementer
	b	dec_handler
	VEC_FATAL 0xA00
	VEC_FATAL 0xB00
	.org	0xC00				# real-mode system call
	b	syscall_handler
	.org	0xD00				# real-mode trace
	b	trace_handler
	VEC_FATAL 0xE00
	VEC_FATAL 0xF00

# Unexpected interrupt: r3 = vector, original r3 in SPRG2. Records
# fatal_info = { vector, SRR0, SRR1, vcpu } and stops this vcpu with
# status = vector (0x4xxx if it arrived through the AIL=3 vectors).
	.org	0x1000
	.globl	unexpected_interrupt
	.type	unexpected_interrupt, @function
unexpected_interrupt:
	LOADADDR r4, fatal_info
	std	r3, 0(r4)
	mfspr	r5, SPRN_SRR0
	std	r5, 8(r4)
	mfspr	r5, SPRN_SRR1
	std	r5, 16(r4)
	mfspr	r5, SPRN_SPRG0
	ld	r5, PACA_IDX(r5)
	std	r5, 24(r4)
	mr	r4, r3
	li	r3, 0
	ori	r3, r3, H_ACTORSTEP_STOP
	sc	1
	b	.
	.size	unexpected_interrupt, . - unexpected_interrupt

	VEC_FATAL 0x4100
	VEC_FATAL 0x4200
	VEC_FATAL 0x4300
	VEC_FATAL 0x4400
	VEC_FATAL 0x4500
	VEC_FATAL 0x4600
	VEC_FATAL 0x4700
	VEC_FATAL 0x4800

# ---------------------------------------------------------------------------
# Decrementer (0x900 / AIL=3: 0xC000000000004900): ticks[cpu]++, reload DEC.
	.org	0x4900
	.globl	dec_handler
	.type	dec_handler, @function
dec_handler:
	mtspr	SPRN_SPRG1, r13
	mfspr	r13, SPRN_SPRG0
	std	r3, PACA_DEC_SAVE+0(r13)
	std	r4, PACA_DEC_SAVE+8(r13)
	mfcr	r3
	stw	r3, PACA_DEC_SAVE+16(r13)

	li	r3, 0
	ori	r3, r3, DEC_RELOAD
	mtspr	SPRN_DEC, r3			# re-arm, or we would fire again at once

	ld	r3, PACA_IDX(r13)
	sldi	r3, r3, 3
	LOADADDR r4, ticks
	add	r4, r4, r3
	ld	r3, 0(r4)
	addi	r3, r3, 1
	std	r3, 0(r4)

	lwz	r3, PACA_DEC_SAVE+16(r13)
	mtcrf	0xff, r3
	ld	r4, PACA_DEC_SAVE+8(r13)
	ld	r3, PACA_DEC_SAVE+0(r13)
	mfspr	r13, SPRN_SPRG1
	rfid
	.size	dec_handler, . - dec_handler

	VEC_FATAL 0x4A00
	VEC_FATAL 0x4B00

# ---------------------------------------------------------------------------
# System call (sc; 0xC00 / 0xC000000000004C00). r0 = call number:
#   SYS_INC (1):    r3 = r3 + 1
#   SYS_GETCPU (2): r3 = vcpu index
#   otherwise:      r3 = -38 (ENOSYS)
# Every other register is preserved. syscall_count[cpu]++.
	.org	0x4C00
	.globl	syscall_handler
	.type	syscall_handler, @function
syscall_handler:
	mtspr	SPRN_SPRG1, r13
	mfspr	r13, SPRN_SPRG0
	std	r4, PACA_SC_SAVE+0(r13)
	std	r5, PACA_SC_SAVE+8(r13)
	mfcr	r4
	stw	r4, PACA_SC_SAVE+16(r13)

	ld	r5, PACA_IDX(r13)
	sldi	r5, r5, 3
	LOADADDR r4, syscall_count
	add	r4, r4, r5
	ld	r5, 0(r4)
	addi	r5, r5, 1
	std	r5, 0(r4)

	cmpdi	r0, SYS_INC
	bne	1f
	addi	r3, r3, 1
	b	9f
1:	cmpdi	r0, SYS_GETCPU
	bne	2f
	ld	r3, PACA_IDX(r13)
	b	9f
2:	li	r3, -38
9:	lwz	r4, PACA_SC_SAVE+16(r13)
	mtcrf	0xff, r4
	ld	r5, PACA_SC_SAVE+8(r13)
	ld	r4, PACA_SC_SAVE+0(r13)
	mfspr	r13, SPRN_SPRG1
	rfid
	.size	syscall_handler, . - syscall_handler

# ---------------------------------------------------------------------------
# Trace (MSR[SE]; 0xD00 / 0xC000000000004D00). Runs with SE=0 (interrupt
# entry cleared it), so the handler itself is not traced. Logs SRR0 (the
# next instruction of the traced code) into trace_log[trace_count++ & 63].
# As soon as SRR0 leaves [traced_function, traced_function_end) -- i.e. the
# traced function has returned -- SE is cleared in SRR1 so tracing stops.
	.org	0x4D00
	.globl	trace_handler
	.type	trace_handler, @function
trace_handler:
	mtspr	SPRN_SPRG1, r13
	mfspr	r13, SPRN_SPRG0
	std	r3, PACA_TRACE_SAVE+0(r13)
	std	r4, PACA_TRACE_SAVE+8(r13)
	std	r5, PACA_TRACE_SAVE+16(r13)
	mfcr	r3
	stw	r3, PACA_TRACE_SAVE+24(r13)

	LOADADDR r4, trace_count
	ld	r3, 0(r4)
	addi	r5, r3, 1
	std	r5, 0(r4)
	clrldi	r3, r3, 58			# slot = count & 63
	sldi	r3, r3, 3
	LOADADDR r4, trace_log
	mfspr	r5, SPRN_SRR0
	stdx	r5, r4, r3

	clrldi	r5, r5, 4			# strip the 0xC... quadrant
	LOADADDR r4, traced_function
	cmpld	r5, r4
	blt	trace_stop
	LOADADDR r4, traced_function_end
	cmpld	r5, r4
	blt	trace_out
	.globl	trace_stop
trace_stop:					# left traced_function: SE off
	mfspr	r5, SPRN_SRR1
	li	r4, MSR_SE
	andc	r5, r5, r4
	mtspr	SPRN_SRR1, r5
trace_out:
	lwz	r3, PACA_TRACE_SAVE+24(r13)
	mtcrf	0xff, r3
	ld	r5, PACA_TRACE_SAVE+16(r13)
	ld	r4, PACA_TRACE_SAVE+8(r13)
	ld	r3, PACA_TRACE_SAVE+0(r13)
	mfspr	r13, SPRN_SPRG1
	rfid
	.size	trace_handler, . - trace_handler

	VEC_FATAL 0x4E00
	VEC_FATAL 0x4F00

# ===========================================================================
# Entry: every vcpu, r3 = vcpu index, MSR = SF|ME|LE, real mode, EE=0.
	.org	0x5000
	.globl	_start
	.type	_start, @function
_start:
	mr	r31, r3
	cmpldi	r31, NR_CPUS
	blt	1f
	li	r4, STOP_TOO_MANY_CPUS		# this image only knows 4 vcpus
	b	stop_self
1:
	# r13 = paca[cpu] (EA 0xC000...; real mode ignores EA bits 0:3)
	LOADKADDR r13, paca
	sldi	r4, r31, PACA_SHIFT
	add	r13, r13, r4
	std	r31, PACA_IDX(r13)
	mtspr	SPRN_SPRG0, r13

	# r1 = top of stacks[cpu] minus one frame, back chain 0
	LOADKADDR r1, stacks
	addi	r4, r31, 1
	sldi	r4, r4, STACK_SHIFT
	add	r1, r1, r4
	li	r0, 0
	stdu	r0, -FRAME(r1)

	# arm the decrementer (nothing fires until MSR[EE]=1)
	li	r4, 0
	ori	r4, r4, DEC_RELOAD
	mtspr	SPRN_DEC, r4

	cmpdi	r31, 0
	bne	secondary_wait

	.globl	boot_cpu
boot_cpu:
	LOADADDR r3, title_str
	bl	puts

	# interrupts little-endian (LPCR[ILE]=1; already so for an LE image)
	li	r3, H_SET_MODE
	li	r4, 1				# mflags: 1 = LE
	li	r5, 4				# resource 4: LE
	li	r6, 0
	li	r7, 0
	sc	1
	cmpdi	r3, 0
	bne	set_mode_failed

	# AIL=3: relocation-on interrupts go to 0xC000000000004000 + vector
	li	r3, H_SET_MODE
	li	r4, 3				# mflags: AIL value
	li	r5, 3				# resource 3: ADDR_TRANS_MODE
	li	r6, 0
	li	r7, 0
	sc	1
	cmpdi	r3, 0
	bne	set_mode_failed

	LOADADDR r4, ail_ready
	li	r5, 1
	lwsync
	std	r5, 0(r4)			# release the secondaries
	b	go_virtual

	.globl	secondary_wait
secondary_wait:					# spin until vcpu 0 set up AIL
	LOADADDR r4, ail_ready
1:	ld	r5, 0(r4)
	cmpdi	r5, 0
	beq	1b
	lwsync

	# Switch on relocation (and EE) and continue at the 0xC000... alias.
	.globl	go_virtual
go_virtual:
	mfmsr	r4
	ori	r4, r4, MSR_IR | MSR_DR
	ori	r4, r4, MSR_EE
	mtspr	SPRN_SRR1, r4
	LOADKADDR r4, relocated
	mtspr	SPRN_SRR0, r4
	rfid

	.globl	relocated
relocated:					# now at 0xC000..., IR=DR=EE=1
	# cpus_online++ with ldarx/stdcx.
	LOADADDR r4, cpus_online
1:	ldarx	r5, 0, r4
	addi	r5, r5, 1
	stdcx.	r5, 0, r4
	bne-	1b

	# "ActorStep demo: vcpu N online, MSR=0x..., PIR=0x...\n"
	LOADADDR r3, console_lock
	bl	spin_lock
	LOADADDR r3, banner_str
	bl	puts_nolock
	addi	r3, r31, '0'
	bl	put_char
	LOADADDR r3, banner_msr_str
	bl	puts_nolock
	mfmsr	r3
	bl	put_hex
	LOADADDR r3, banner_pir_str
	bl	puts_nolock
	mfspr	r3, SPRN_PIR
	bl	put_hex
	li	r3, '\n'
	bl	put_char
	LOADADDR r3, console_lock
	bl	spin_unlock

	# worker registers: r30 = iteration, r29 = &counter_lock,
	# r28 = &per_cpu_count[cpu], r27 = &counter, r26 = running work checksum
	li	r30, 0
	LOADADDR r29, counter_lock
	LOADADDR r28, per_cpu_count
	sldi	r4, r31, 3
	add	r28, r28, r4
	LOADADDR r27, counter
	li	r26, 0
	b	worker_loop
	.size	_start, . - _start

# ---------------------------------------------------------------------------
	.globl	worker_loop
	.type	worker_loop, @function
worker_loop:
	mr	r3, r29
	bl	spin_lock
	.globl	critical_section
critical_section:
	ld	r4, 0(r27)			# counter++
	addi	r4, r4, 1
	std	r4, 0(r27)
	ld	r4, 0(r28)			# per_cpu_count[cpu]++
	addi	r4, r4, 1
	std	r4, 0(r28)
	mr	r3, r29
	bl	spin_unlock

	addi	r30, r30, 1

	# a bit of work in a leaf function
	mr	r3, r30
	bl	do_work
	add	r26, r26, r3
	rotldi	r26, r26, 1

	# every 16 iterations: a system call, checked with a trap
	andi.	r4, r30, 15
	bne	1f
	.globl	worker_syscall
worker_syscall:
	li	r0, SYS_INC
	mr	r3, r30
	sc
	addi	r4, r30, 1
	tdne	r3, r4				# program interrupt if the handler lied
1:
	# vcpu 1: every 4 iterations run traced_function under MSR[SE]
	cmpdi	r31, 1
	bne	2f
	andi.	r4, r30, 3
	bne	2f
	mr	r3, r30
	bl	run_traced
	LOADADDR r4, traced_result
	std	r3, 0(r4)
2:
	# every 64 iterations: vcpu 3 cedes, vcpu 2 prods vcpu 3
	andi.	r4, r30, 63
	bne	4f
	cmpdi	r31, 3
	bne	3f
	li	r3, H_CEDE
	sc	1				# woken by H_PROD or the decrementer
	LOADADDR r4, cede_count
	ld	r5, 0(r4)
	addi	r5, r5, 1
	std	r5, 0(r4)
	b	4f
3:	cmpdi	r31, 2
	bne	4f
	li	r3, H_PROD
	li	r4, 3
	sc	1				# H_PARAMETER if there is no vcpu 3: ignored
	LOADADDR r4, prod_count
	ld	r5, 0(r4)
	addi	r5, r5, 1
	std	r5, 0(r4)
4:
	# vcpu 0: heartbeat line when (iteration & heartbeat_mask) == 0
	cmpdi	r31, 0
	bne	5f
	LOADADDR r4, heartbeat_mask
	ld	r4, 0(r4)
	cmpdi	r4, 0
	beq	5f
	and.	r4, r4, r30
	bne	5f
	bl	heartbeat
5:
	b	worker_loop
	.size	worker_loop, . - worker_loop

# ---------------------------------------------------------------------------
# spin_lock(r3 = &lock word): lwarx/stwcx. test-and-set, acquire with isync.
# The lock word holds owner vcpu + 1 (read from the paca via SPRG0).
# Clobbers r4, r5, cr0.
	.globl	spin_lock
	.type	spin_lock, @function
spin_lock:
	mfspr	r4, SPRN_SPRG0
	ld	r4, PACA_IDX(r4)
	addi	r4, r4, 1
1:	lwarx	r5, 0, r3
	cmpwi	r5, 0
	bne-	2f
	stwcx.	r4, 0, r3
	bne-	1b
	isync
	blr
2:	lwz	r5, 0(r3)			# wait read-only until it looks free
	cmpwi	r5, 0
	bne	2b
	b	1b
	.size	spin_lock, . - spin_lock

# spin_unlock(r3 = &lock word): lwsync; *lock = 0. Clobbers r4.
	.globl	spin_unlock
	.type	spin_unlock, @function
spin_unlock:
	lwsync
	li	r4, 0
	stw	r4, 0(r3)
	blr
	.size	spin_unlock, . - spin_unlock

# ---------------------------------------------------------------------------
# do_work(r3 = n): number of Collatz steps for (n & 255) + 1. Leaf.
	.globl	do_work
	.type	do_work, @function
do_work:
	clrldi	r4, r3, 56
	addi	r4, r4, 1
	li	r3, 0
1:	cmpdi	r4, 1
	beqlr
	andi.	r5, r4, 1
	beq	2f
	mulli	r4, r4, 3			# odd: 3n + 1
	addi	r4, r4, 1
	b	3f
2:	srdi	r4, r4, 1			# even: n / 2
3:	addi	r3, r3, 1
	b	1b
	.size	do_work, . - do_work

# ---------------------------------------------------------------------------
# run_traced(r3 = x): calls traced_function(x) with MSR[SE]=1 by "returning"
# into it with rfid: SRR0 = traced_function, SRR1 = MSR | SE, LR = traced_return.
# EE is switched off first so a decrementer cannot clobber SRR0/SRR1.
	.globl	run_traced
	.type	run_traced, @function
run_traced:
	mflr	r0
	std	r0, 16(r1)
	stdu	r1, -32(r1)
	mfmsr	r9
	li	r10, 0
	ori	r10, r10, MSR_EE
	andc	r10, r9, r10
	mtmsrd	r10, 1				# EE=0 (L=1: only EE and RI change)
	ori	r9, r9, MSR_SE			# original MSR (EE=1) + single step
	mtspr	SPRN_SRR1, r9
	LOADKADDR r10, traced_function
	mtspr	SPRN_SRR0, r10
	LOADKADDR r10, traced_return
	mtlr	r10
	rfid
	.globl	traced_return
traced_return:					# traced_function's blr lands here
	LOADADDR r4, trace_runs
	ld	r5, 0(r4)
	addi	r5, r5, 1
	std	r5, 0(r4)
	addi	r1, r1, 32
	ld	r0, 16(r1)
	mtlr	r0
	blr
	.size	run_traced, . - run_traced

# traced_function(r3 = x): a small leaf, single-stepped by vcpu 1.
# Returns rotl64((3x + 1) ^ (x >> 2), 7) + x. Clobbers r4, r5.
	.globl	traced_function
	.type	traced_function, @function
traced_function:
	mr	r4, r3
	mulli	r3, r3, 3
	addi	r3, r3, 1
	srdi	r5, r4, 2
	xor	r3, r3, r5
	rotldi	r3, r3, 7
	add	r3, r3, r4
	blr
	.globl	traced_function_end
traced_function_end:
	.size	traced_function, . - traced_function

# ---------------------------------------------------------------------------
# Console. H_PUT_TERM_CHAR takes up to 16 bytes packed big-endian in r6:r7
# (first character = most significant byte of r6), whatever our endianness.

# put_char(r3 = character). Clobbers r3-r7.
	.globl	put_char
	.type	put_char, @function
put_char:
	sldi	r6, r3, 56
	li	r7, 0
	li	r5, 1
	li	r4, 0
	li	r3, H_PUT_TERM_CHAR
	sc	1
	blr
	.size	put_char, . - put_char

# puts_nolock(r3 = NUL-terminated string): caller holds console_lock.
# Leaf; clobbers r3-r10, cr0.
	.globl	puts_nolock
	.type	puts_nolock, @function
puts_nolock:
	mr	r10, r3				# r10 = cursor
0:	li	r6, 0
	li	r7, 0
	li	r5, 0				# r5 = bytes in this chunk
1:	lbz	r8, 0(r10)
	cmpwi	r8, 0
	beq	3f
	cmpwi	r5, 8
	bge	2f
	sldi	r6, r6, 8			# bytes 0..7 -> r6
	or	r6, r6, r8
	b	4f
2:	sldi	r7, r7, 8			# bytes 8..15 -> r7
	or	r7, r7, r8
4:	addi	r10, r10, 1
	addi	r5, r5, 1
	cmpwi	r5, 16
	blt	1b
3:	cmpwi	r5, 0
	beqlr
	# left-justify the partial register (sld by 64 gives 0, which is fine)
	cmpwi	r5, 8
	bge	5f
	subfic	r9, r5, 8
	sldi	r9, r9, 3
	sld	r6, r6, r9
	b	6f
5:	subfic	r9, r5, 16
	sldi	r9, r9, 3
	sld	r7, r7, r9
6:	li	r4, 0				# terminal 0
	li	r3, H_PUT_TERM_CHAR
	sc	1
	cmpwi	r5, 16
	beq	0b				# full chunk: there may be more
	blr
	.size	puts_nolock, . - puts_nolock

# puts(r3 = string): puts_nolock under console_lock.
	.globl	puts
	.type	puts, @function
puts:
	mflr	r0
	std	r0, 16(r1)
	stdu	r1, -48(r1)
	std	r30, 32(r1)
	mr	r30, r3
	LOADADDR r3, console_lock
	bl	spin_lock
	mr	r3, r30
	bl	puts_nolock
	LOADADDR r3, console_lock
	bl	spin_unlock
	ld	r30, 32(r1)
	addi	r1, r1, 48
	ld	r0, 16(r1)
	mtlr	r0
	blr
	.size	puts, . - puts

# put_hex(r3 = value): prints "0x%016lx"; caller holds console_lock.
	.globl	put_hex
	.type	put_hex, @function
put_hex:
	mflr	r0
	std	r0, 16(r1)
	stdu	r1, -64(r1)
	addi	r4, r1, 32			# 19-byte buffer at 32(r1)
	li	r5, '0'
	stb	r5, 0(r4)
	li	r5, 'x'
	stb	r5, 1(r4)
	addi	r7, r4, 2
	li	r6, 16
	mtctr	r6
1:	rotldi	r3, r3, 4
	clrldi	r5, r3, 60
	cmpwi	r5, 10
	blt	2f
	addi	r5, r5, 'a' - '0' - 10
2:	addi	r5, r5, '0'
	stb	r5, 0(r7)
	addi	r7, r7, 1
	bdnz	1b
	li	r5, 0
	stb	r5, 0(r7)
	mr	r3, r4
	bl	puts_nolock
	addi	r1, r1, 64
	ld	r0, 16(r1)
	mtlr	r0
	blr
	.size	put_hex, . - put_hex

# heartbeat(): "heartbeat: counter=0x... ticks0=0x... traces=0x...\n"
	.globl	heartbeat
	.type	heartbeat, @function
heartbeat:
	mflr	r0
	std	r0, 16(r1)
	stdu	r1, -32(r1)
	LOADADDR r3, console_lock
	bl	spin_lock
	LOADADDR r3, hb_counter_str
	bl	puts_nolock
	LOADADDR r3, counter
	ld	r3, 0(r3)
	bl	put_hex
	LOADADDR r3, hb_ticks_str
	bl	puts_nolock
	LOADADDR r3, ticks
	ld	r3, 0(r3)
	bl	put_hex
	LOADADDR r3, hb_trace_str
	bl	puts_nolock
	LOADADDR r3, trace_count
	ld	r3, 0(r3)
	bl	put_hex
	li	r3, '\n'
	bl	put_char
	LOADADDR r3, console_lock
	bl	spin_unlock
	addi	r1, r1, 32
	ld	r0, 16(r1)
	mtlr	r0
	blr
	.size	heartbeat, . - heartbeat

# ---------------------------------------------------------------------------
set_mode_failed:
	li	r4, STOP_SET_MODE_FAILED
# stop_self(r4 = status): H_ACTORSTEP_STOP, never returns.
	.globl	stop_self
stop_self:
	li	r3, 0
	ori	r3, r3, H_ACTORSTEP_STOP
	sc	1
	b	stop_self

# ===========================================================================
	.data
	.balign	128
	.globl	counter_lock
	.type	counter_lock, @object
counter_lock:	.long 0			# 0 = free, else owner vcpu + 1
	.size	counter_lock, 4

	.balign	128
	.globl	counter
	.type	counter, @object
counter:	.quad 0			# shared, protected by counter_lock
	.size	counter, 8

	.balign	128
	.globl	console_lock
	.type	console_lock, @object
console_lock:	.long 0
	.size	console_lock, 4

	.balign	128
	.globl	per_cpu_count
	.type	per_cpu_count, @object
per_cpu_count:	.quad 0, 0, 0, 0	# iterations per vcpu (under counter_lock)
	.size	per_cpu_count, 32

	.globl	ticks
	.type	ticks, @object
ticks:		.quad 0, 0, 0, 0	# decrementer interrupts per vcpu
	.size	ticks, 32

	.globl	syscall_count
	.type	syscall_count, @object
syscall_count:	.quad 0, 0, 0, 0	# system calls per vcpu
	.size	syscall_count, 32

	.globl	ail_ready
	.type	ail_ready, @object
ail_ready:	.quad 0			# set by vcpu 0 once AIL=3 is on
	.size	ail_ready, 8

	.globl	cpus_online
	.type	cpus_online, @object
cpus_online:	.quad 0
	.size	cpus_online, 8

	.globl	trace_count
	.type	trace_count, @object
trace_count:	.quad 0			# total Trace interrupts
	.size	trace_count, 8

	.globl	trace_runs
	.type	trace_runs, @object
trace_runs:	.quad 0			# completed run_traced calls
	.size	trace_runs, 8

	.globl	traced_result
	.type	traced_result, @object
traced_result:	.quad 0
	.size	traced_result, 8

	.globl	cede_count
	.type	cede_count, @object
cede_count:	.quad 0
	.size	cede_count, 8

	.globl	prod_count
	.type	prod_count, @object
prod_count:	.quad 0
	.size	prod_count, 8

	.globl	heartbeat_mask
	.type	heartbeat_mask, @object
heartbeat_mask:	.quad 0x3fff		# vcpu 0 prints when (iter & mask) == 0; 0 = off
	.size	heartbeat_mask, 8

	.globl	fatal_info
	.type	fatal_info, @object
fatal_info:	.quad 0, 0, 0, 0	# vector, SRR0, SRR1, vcpu of the last fatal interrupt
	.size	fatal_info, 32

	.balign	128
	.globl	trace_log
	.type	trace_log, @object
trace_log:	.space 64 * 8		# ring buffer of SRR0 values (trace_count & 63)
	.size	trace_log, 512

title_str:	.asciz "ActorStep demo guest: ppc64le, 4 vcpus, AIL=3, vcpu 1 single-steps traced_function\n"
banner_str:	.asciz "ActorStep demo: vcpu "
banner_msr_str:	.asciz " online, MSR="
banner_pir_str:	.asciz ", PIR="
hb_counter_str:	.asciz "heartbeat: counter="
hb_ticks_str:	.asciz " ticks[0]="
hb_trace_str:	.asciz " trace_count="

# ===========================================================================
	.bss
	.balign	256
	.globl	paca
	.type	paca, @object
paca:		.space NR_CPUS << PACA_SHIFT	# per-vcpu area, pointer in SPRG0/r13
	.size	paca, NR_CPUS << PACA_SHIFT

	.balign	4096
	.globl	stacks
	.type	stacks, @object
stacks:		.space NR_CPUS << STACK_SHIFT	# 16 KiB per vcpu, grows down
	.size	stacks, NR_CPUS << STACK_SHIFT
