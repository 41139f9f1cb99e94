# ActorStep spinlock stress guest (ppc64le, real mode, any number of vcpus).
# Every vcpu increments the shared 64-bit `counter` under a lwarx/stwcx.
# spinlock exactly `iterations` times (patchable; default 100000), then
# increments `done_count` with ldarx/stdcx. and stops itself with
# H_ACTORSTEP_STOP status 0. With N vcpus, at the end:
#   counter == N * iterations, done_count == N,
#   per_cpu_count[i] == iterations for i < 16.
# No console output. Unexpected interrupts stop the vcpu with status = vector.

	.set	H_ACTORSTEP_STOP, 0xF080	# > 0x7fff: li 0 + ori
	.set	MAX_TRACKED_CPUS, 16

.macro LOADADDR reg, sym
	lis	\reg, \sym@h
	ori	\reg, \reg, \sym@l
.endm

.macro VEC_FATAL vec
	.org	\vec
	li	r4, \vec
	b	fatal
.endm

	.abiversion 2
	.text
	.org	0
	b	_start
	VEC_FATAL 0x100
	VEC_FATAL 0x200
	VEC_FATAL 0x300
	VEC_FATAL 0x400
	VEC_FATAL 0x500
	VEC_FATAL 0x600
	VEC_FATAL 0x700
	VEC_FATAL 0x800
	VEC_FATAL 0x900
	VEC_FATAL 0xA00
	VEC_FATAL 0xB00
	VEC_FATAL 0xC00
	VEC_FATAL 0xD00
	VEC_FATAL 0xE00
	VEC_FATAL 0xF00

	.org	0x1000
	.globl	fatal
fatal:						# r4 = vector
	li	r3, 0
	ori	r3, r3, H_ACTORSTEP_STOP
	sc	1
	b	fatal

	.globl	_start
	.type	_start, @function
_start:
	mr	r31, r3				# vcpu index
	addi	r25, r31, 1			# lock token = vcpu + 1
	LOADADDR r29, lock
	LOADADDR r27, counter
	# r28 = &per_cpu_count[cpu], or a dummy slot for cpu >= 16
	LOADADDR r28, per_cpu_count
	cmpldi	r31, MAX_TRACKED_CPUS
	bge	1f
	sldi	r4, r31, 3
	add	r28, r28, r4
	b	2f
1:	LOADADDR r28, per_cpu_overflow
2:	LOADADDR r4, iterations
	ld	r30, 0(r4)			# r30 = remaining iterations
	cmpdi	r30, 0
	beq	finished

	.globl	spin_loop
spin_loop:
	mr	r3, r29
	mr	r4, r25
	bl	spin_lock
	ld	r5, 0(r27)			# counter++
	addi	r5, r5, 1
	std	r5, 0(r27)
	ld	r5, 0(r28)			# per_cpu_count[cpu]++
	addi	r5, r5, 1
	std	r5, 0(r28)
	mr	r3, r29
	bl	spin_unlock
	addi	r30, r30, -1
	cmpdi	r30, 0
	bne	spin_loop

	.globl	finished
finished:
	LOADADDR r4, done_count
1:	ldarx	r5, 0, r4
	addi	r5, r5, 1
	stdcx.	r5, 0, r4
	bne-	1b
	li	r4, 0				# status 0
	li	r3, 0
	ori	r3, r3, H_ACTORSTEP_STOP
	sc	1
	b	finished
	.size	_start, . - _start

# spin_lock(r3 = &lock, r4 = token != 0): acquire with isync. Clobbers r5, cr0.
	.globl	spin_lock
	.type	spin_lock, @function
spin_lock:
1:	lwarx	r5, 0, r3
	cmpwi	r5, 0
	bne-	2f
	stwcx.	r4, 0, r3
	bne-	1b
	isync
	blr
2:	lwz	r5, 0(r3)
	cmpwi	r5, 0
	bne	2b
	b	1b
	.size	spin_lock, . - spin_lock

# spin_unlock(r3 = &lock): lwsync; *lock = 0. Clobbers r5.
	.globl	spin_unlock
	.type	spin_unlock, @function
spin_unlock:
	lwsync
	li	r5, 0
	stw	r5, 0(r3)
	blr
	.size	spin_unlock, . - spin_unlock

	.data
	.balign	8
	.globl	iterations
	.type	iterations, @object
iterations:	.quad 100000		# per vcpu; patch before starting
	.size	iterations, 8

	.balign	128
	.globl	lock
	.type	lock, @object
lock:		.long 0			# 0 = free, else owner vcpu + 1
	.size	lock, 4

	.balign	128
	.globl	counter
	.type	counter, @object
counter:	.quad 0
	.size	counter, 8

	.balign	128
	.globl	done_count
	.type	done_count, @object
done_count:	.quad 0
	.size	done_count, 8

	.balign	128
	.globl	per_cpu_count
	.type	per_cpu_count, @object
per_cpu_count:	.space MAX_TRACKED_CPUS * 8
	.size	per_cpu_count, MAX_TRACKED_CPUS * 8
per_cpu_overflow: .quad 0
