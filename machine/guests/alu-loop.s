# alu-loop: the guest-instructions-per-second benchmark. One vcpu (others stop at once) runs an
# endless ALU/branch loop of eight instructions: integer arithmetic, logical, rotate, compare and a
# conditional branch, the mix a kernel's hot loops are made of. Real mode, no interrupts.
	.text
	.globl	_start
_start:
	cmpdi	r3, 0
	bne	stop_self
	li	r4, 1
	li	r5, 3
	li	r6, 0
	.globl	loop
loop:
	add	r6, r6, r4		# 1
	xor	r7, r6, r5		# 2
	rlwinm	r8, r7, 3, 0, 28	# 3
	subf	r9, r8, r6		# 4
	addi	r4, r4, 1		# 5
	and	r10, r9, r5		# 6
	cmpld	r4, r6			# 7
	bne	loop			# 8
	b	loop
stop_self:
	li	r3, 0
	ori	r3, r3, 0xF080
	li	r4, 0
	sc	1
