# call-loop: the block-entry benchmark's guest (bench/MachineBenchmark.cs). vcpu 0 runs an endless loop that calls a
# three-instruction function on the next page: every iteration leaves one compiled block at the call and another at the
# return (`bl` and `blr` leave a block, and a block holds the words of one page), so the loop's rate is mostly the cost of
# entering and leaving blocks, as in a kernel's short functions. The other vcpus stop at once. Little-endian, real mode.
	.text
	.globl	_start
_start:
	cmpdi	3, 0
	bne	stop_self
	li	5, 0
	.globl	loop
loop:
	addi	5, 5, 1
	addi	7, 7, 3
	bl	far
	cmpdi	5, 0
	bne	loop
	b	_start
stop_self:
	li	3, 0
	ori	3, 3, 0xF080
	li	4, 0
	sc	1

	.balign	4096
	.globl	far
far:
	addi	3, 3, 1
	xor	4, 4, 3
	blr
