#!/usr/bin/env bash
# Builds every *.s / *.S guest in this folder into NAME.elf (next to the source).
#   *-be.s / *-be.S  -> big-endian    (powerpc64-linux-gnu-as / -ld)
#   everything else  -> little-endian (powerpc64le-linux-gnu-as / -ld)
# Usage: build.sh            rebuild the committed ELFs in place
#        build.sh --check    build into a temp dir; exit 1 listing every committed
#                            ELF that is missing or differs from a fresh build
# Output is reproducible (no timestamps, no build-id, debug paths mapped to ".").
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"

check=0
case "${1:-}" in
	"") ;;
	--check) check=1 ;;
	*) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [[ $check == 1 ]]; then outdir=$work/out; mkdir -p "$outdir"; else outdir=$here; fi

export LC_ALL=C SOURCE_DATE_EPOCH=0
shopt -s nullglob
srcs=(*.s *.S)
if [[ ${#srcs[@]} == 0 ]]; then echo "no guest sources" >&2; exit 1; fi

failed=()
for src in "${srcs[@]}"; do
	name=${src%.*}
	if [[ $name == *-be ]]; then
		prefix=powerpc64-linux-gnu; asflags=(-a64 -mbig -mpower9 -mregnames)
	else
		prefix=powerpc64le-linux-gnu; asflags=(-a64 -mlittle -mpower9 -mregnames)
	fi
	obj=$work/$name.o
	out=$outdir/$name.elf
	"$prefix-as" "${asflags[@]}" -g --debug-prefix-map "$here=." -o "$obj" "$src"
	"$prefix-ld" -nostdlib -static --build-id=none --no-warn-rwx-segments -N -T guest.ld -o "$out.tmp" "$obj"
	# Drop the local absolute symbols made by .set (SPR numbers, MSR bits...), so
	# gdb does not label small addresses with constant names.
	"$prefix-nm" "$out.tmp" | awk '$2 == "a" { print $3 }' > "$work/$name.abs"
	if [[ -s $work/$name.abs ]]; then
		"$prefix-objcopy" --strip-symbols="$work/$name.abs" "$out.tmp"
	fi
	# The debugger's breakpoint word must never appear (00 dd dd 00 reads the same
	# in both byte orders); only 4-byte-aligned occurrences matter.
	"$prefix-objcopy" -O binary "$out.tmp" "$work/$name.bin"
	if LC_ALL=C grep -obUaP '\x00\xdd\xdd\x00' "$work/$name.bin" | awk -F: '$1 % 4 == 0 { bad=1 } END { exit !bad }'; then
		echo "error: $name.elf contains the breakpoint word 0x00dddd00" >&2
		rm -f "$out.tmp"; exit 1
	fi
	mv "$out.tmp" "$out"
	if [[ $check == 1 ]]; then
		if ! cmp -s "$out" "$here/$name.elf"; then failed+=("$name.elf"); fi
	else
		echo "built $name.elf ($(sha256sum < "$out" | cut -c1-16))"
	fi
done

if [[ $check == 1 ]]; then
	if [[ ${#failed[@]} != 0 ]]; then
		echo "guest ELFs out of date (run machine/guests/build.sh):" >&2
		printf '  %s\n' "${failed[@]}" >&2
		exit 1
	fi
	echo "all guest ELFs up to date"
fi
