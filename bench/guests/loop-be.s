# A tiny big-endian bare-metal loop for the gdb benchmark (bench/GdbBenchmark.cs), run on both
# qemu-system-ppc64 -M powernv (which loads -bios as a raw image at 0 and starts at 0x10, BE, HV=1)
# and ActorStep (the ELF; e_entry = 0x10). Only fixed-point instructions: both machines execute
# the same sequence whatever their privileged state.
	.text
	.org	0
	b	_start
	.org	0x10
	.globl	_start
_start:
	li	4, 0
	li	6, 0
	.globl	loop
loop:
	addi	4, 4, 1
	xor	5, 4, 3
	add	6, 6, 5
	rldicl	7, 6, 7, 0
	b	loop
