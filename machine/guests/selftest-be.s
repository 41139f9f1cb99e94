# ActorStep big-endian self-test guest (ppc64, BE). Works with any number of
# vcpus; every vcpu runs the same code and writes the same values.
#   1. prints "BE guest ok\n" with one H_PUT_TERM_CHAR
#   2. loop: r20 = 1 + 2 + ... + 100 = 5050
#   3. big-endian loads/stores into `result`
#   4. one `sc` (SYS_INC: r3 = 41 -> 42) through syscall_handler at 0xC00
#   5. H_ACTORSTEP_STOP with status 0 if every check passed, otherwise the
#      number of the first failed check (see the `li r4, N` before each bne).
#
# result layout (8-byte big-endian words at `result`):
#   +0  5050                 sum from the loop
#   +8  0x11223344 (word) then 0x00000000 padding
#   +16 0x11                 lbz  of result+8  (first byte in BE memory)
#   +24 0x3344               lhz  of result+10
#   +32 0x44332211           lwbrx of result+8
#   +40 42                   value returned by the system call
#   +48 number of sc handled (sc_count, written by the handler; per image)

	.set	SPRN_SRR0, 26
	.set	SPRN_SRR1, 27
	.set	H_PUT_TERM_CHAR, 0x58
	.set	H_ACTORSTEP_STOP, 0xF080	# > 0x7fff: li 0 + ori

.macro LOADADDR reg, sym
	lis	\reg, \sym@h
	ori	\reg, \reg, \sym@l
.endm

# Unexpected vectors stop the vcpu with status = vector.
.macro VEC_FATAL vec
	.org	\vec
	li	r4, \vec
	b	fatal
.endm

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

# System call: r0 = 1 -> r3 = r3 + 1; sc_count++ (racy with >1 vcpu, which
# is fine: it is only informative). Preserves everything but r3.
	.org	0xC00
	.globl	syscall_handler
syscall_handler:
	mtspr	272, r4				# SPRG0/1 as scratch
	mtspr	273, r5
	LOADADDR r4, sc_count
	ld	r5, 0(r4)
	addi	r5, r5, 1
	std	r5, 0(r4)
	addi	r3, r3, 1
	mfspr	r5, 273
	mfspr	r4, 272
	rfid

	VEC_FATAL 0xD00
	VEC_FATAL 0xE00
	VEC_FATAL 0xF00

	.org	0x1000
fatal:
	li	r3, 0
	ori	r3, r3, H_ACTORSTEP_STOP
	sc	1
	b	fatal

	.globl	_start
_start:
	mr	r31, r3				# vcpu index (unused apart from gdb)

	# "BE guest ok\n" = 12 bytes: "BE guest" in r6, " ok\n" in the top of r7
	LOADADDR r3, message
	ld	r6, 0(r3)			# big-endian load = packed order already
	lwz	r7, 8(r3)
	sldi	r7, r7, 32
	li	r5, 12
	li	r4, 0
	li	r3, H_PUT_TERM_CHAR
	sc	1

	li	r20, 0
	li	r4, 1
	.globl	loop
loop:
	add	r20, r20, r4
	addi	r4, r4, 1
	cmpdi	r4, 100
	ble	loop

	LOADADDR r9, result
	std	r20, 0(r9)
	lis	r5, 0x1122
	ori	r5, r5, 0x3344
	stw	r5, 8(r9)
	li	r5, 0
	stw	r5, 12(r9)
	lbz	r6, 8(r9)			# 0x11 in big-endian
	lhz	r7, 10(r9)			# 0x3344
	addi	r10, r9, 8
	lwbrx	r8, 0, r10			# 0x44332211
	std	r6, 16(r9)
	std	r7, 24(r9)
	std	r8, 32(r9)

	li	r0, 1
	li	r3, 41
	sc					# -> syscall_handler, r3 = 42
	std	r3, 40(r9)
	LOADADDR r10, sc_count
	ld	r10, 0(r10)
	std	r10, 48(r9)

	# checks; r4 = number of the failing check
	li	r4, 1
	cmpdi	r20, 5050
	bne	done
	li	r4, 2
	cmpdi	r6, 0x11
	bne	done
	li	r4, 3
	cmpdi	r7, 0x3344
	bne	done
	li	r4, 4
	lis	r5, 0x4433
	ori	r5, r5, 0x2211
	cmpd	r8, r5
	bne	done
	li	r4, 5
	cmpdi	r3, 42
	bne	done
	li	r4, 0				# all good

	.globl	done
done:						# r4 = status
	li	r3, 0
	ori	r3, r3, H_ACTORSTEP_STOP
	sc	1
	b	done

	.data
	.balign	8
message:	.ascii "BE guest ok\n"
	.balign	8
	.globl	result
result:		.space 64
	.globl	sc_count
sc_count:	.quad 0
