# mul-loop: the compiled-loop benchmark's guest (bench/MachineBenchmark.cs). vcpu 0 calls, for ever, Linux 6.1's
# mpihelp_submul_1 (lib/mpi/generic_mpih-mul3.c as Debian's ppc64le kernel is built, copied from its vmlinux with the
# ftrace call left out) on 64-limb operands: the loop where that kernel's boot spends most of its instructions (its crypto
# self-tests' RSA), so its rate is the block compiler's code for such a loop. The other vcpus stop at once. Little-endian,
# real mode; the operands are on a page of their own (a store to a page that holds code takes the slow path).
	.text
	.globl	_start
_start:
	cmpdi	3, 0
	bne	stop_self
	lis	1, stack_top@ha
	addi	1, 1, stack_top@l
outer:
	lis	3, res@ha
	addi	3, 3, res@l
	lis	4, s1@ha
	addi	4, 4, s1@l
	li	5, 64
	lis	6, 0x1234
	ori	6, 6, 0x5678
	sldi	6, 6, 32
	oris	6, 6, 0x9abc
	ori	6, 6, 0xdef1
	bl	submul
	b	outer
stop_self:
	li	3, 0
	ori	3, 3, 0xF080
	li	4, 0
	sc	1

	.balign	64
	.globl	submul
submul:
	neg	5, 5
	std	28, -32(1)
	std	29, -24(1)
	lis	29, 1
	li	8, 0
	clrldi	12, 6, 32
	std	30, -16(1)
	std	31, -8(1)
	srdi	31, 6, 32
	not	9, 5
	extsw	28, 5
	sldi	29, 29, 16
	std	27, -40(1)
	clrldi	9, 9, 32
	mr	30, 28
	addi	9, 9, 1
	mtctr	9
	ori	2, 2, 0
	.globl	limb
limb:
	subf	6, 30, 28
	addi	5, 5, 1
	sldi	6, 6, 3
	extsw	28, 5
	ldx	9, 4, 6
	srdi	7, 9, 32
	clrldi	10, 9, 32
	mulld	0, 7, 12
	mulld	9, 10, 12
	mulld	10, 31, 10
	mulld	7, 31, 7
	srdi	11, 9, 32
	add	10, 10, 0
	add	10, 11, 10
	rldimi	9, 10, 32, 0
	cmpld	10, 0
	srdi	27, 10, 32
	add	9, 9, 8
	subfc	8, 8, 9
	bge	1f
	add	7, 7, 29
1:	ldx	10, 3, 6
	subfe	11, 11, 11
	subf	11, 11, 27
	subf	9, 9, 10
	subfc	10, 9, 10
	stdx	9, 3, 6
	subfe	8, 8, 8
	subf	8, 8, 11
	add	8, 8, 7
	bdnz	limb
	ld	27, -40(1)
	ld	28, -32(1)
	mr	3, 8
	ld	29, -24(1)
	ld	30, -16(1)
	ld	31, -8(1)
	blr

	.data
	.balign	4096
res:	.fill	64, 8, 0x0123456789abcdef
s1:	.fill	64, 8, 0xfedcba9876543210
	.balign	4096
	.space	4096
stack_top:
