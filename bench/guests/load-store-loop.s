# load-store-loop: the watchpoint benchmark's guest (bench/MachineBenchmark.cs). vcpu 0 runs an endless loop of eight
# instructions, five of them loads and stores (byte, word, doubleword) into a small buffer: the instructions a watchpoint
# check sits on. The other vcpus stop at once. `untouched` is a doubleword no instruction accesses: the benchmark's
# watchpoint, set there, costs the check on every access and never stops the vcpu. Little-endian, real mode.
	.text
	.globl	_start
_start:
	cmpdi	3, 0
	bne	stop_self
	lis	4, buf@ha
	addi	4, 4, buf@l
	.globl	loop
loop:
	ld	6, 0(4)
	addi	6, 6, 1
	std	6, 0(4)
	lwz	7, 8(4)
	add	7, 7, 6
	stw	7, 8(4)
	stb	6, 16(4)
	b	loop
stop_self:
	li	3, 0
	ori	3, 3, 0xF080
	li	4, 0
	sc	1

	.data
	.balign	64
buf:
	.space	64
	.globl	untouched
untouched:
	.quad	0
