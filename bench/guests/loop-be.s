# A tiny big-endian bare-metal guest for the gdb benchmark (bench/GdbBenchmark.cs), run on both
# qemu-system-ppc64 -M powernv9 (which loads -bios as a raw image at 0 and starts at 0x10, BE, HV=1)
# and ActorStep (the ELF; e_entry = 0x10). Only fixed-point instructions: both machines execute
# the same sequence whatever their privileged state. Assembled with -g: the .loc lines make a DWARF
# line table, so gdb's `next` over line 5 (a counted loop) is one source line of many instructions.
	.file	1 "loop.c"
	.text
	.org	0
	b	_start
	.org	0x10
	.globl	_start
	.type	_start, @function
_start:
	.loc	1 3 0
	li	4, 0
	li	6, 0
	.globl	counted
counted:
	.loc	1 5 0
	li	8, 1000
	mtctr	8
1:	addi	9, 9, 1
	bdnz	1b
	.globl	loop
loop:
	.loc	1 7 0
	addi	4, 4, 1
	xor	5, 4, 3
	add	6, 6, 5
	rldicl	7, 6, 7, 0
	b	loop
	.size	_start, .-_start
