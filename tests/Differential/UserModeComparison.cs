using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using ActorStep.Machine;
using ActorStep.Isa;
using ActorStep.Tests.Support;
using ActorStep.Hypervisor;

namespace ActorStep.Tests.Differential;

/// <summary>The first instruction after which QEMU and the machine disagree.</summary>
internal sealed record Mismatch(int Step, ulong Address, string Instruction, IReadOnlyList<string> Differences)
{
    /// <summary>What the shrinker keeps constant: the mnemonic and which fields differ (not their values).</summary>
    public string Signature => Instruction.Split(' ')[0] + "|" + string.Join(",", Differences.Select(d => d.Split(':', ' ')[0]));

    public override string ToString() =>
        $"after step {Step}, the instruction at 0x{Address:x} ({Instruction}):\n  " + string.Join("\n  ", Differences);
}

/// <summary>The outcome of one program: how many instructions were compared, and the first mismatch if any.</summary>
internal sealed record ComparisonResult(int Instructions, Mismatch? Mismatch);

/// <summary>
/// Runs one generated program on qemu-user (stepped through its gdbstub) and on a one-vcpu
/// <see cref="SimulatedMachine"/>, and compares GPRs, CR, XER, LR, CTR, NIP and the scratch buffer after
/// every instruction.
/// </summary>
internal static class UserModeComparison
{
    /// <summary>Simulated RAM: the ELF is linked at <see cref="UserProgram.TextAddress"/>, well inside it.</summary>
    public const ulong Memory = 4UL << 20;
    private static readonly string CacheDir = Path.Combine(Path.GetTempPath(), "actorstep-differential");

    public static ComparisonResult Run(UserProgram program, int maxSteps = 100_000, bool compareVector = false)
    {
        string elf = BuildElf(program.Source(), program.LittleEndian);
        var image = ElfImage.Load(elf);
        bool le = program.LittleEndian;
        ulong end = image.Symbol("end"), scratch = image.Symbol("scratch");
        var highWordUndefined = image.Symbols
            .Where(s => s.Key.StartsWith(IsaUndefined.HighWordLabel, StringComparison.Ordinal))
            .ToDictionary(s => s.Value, s => int.Parse(s.Key[IsaUndefined.HighWordLabel.Length..].Split('_')[0]));

        var reservations = QemuDepartures.ReservationPairs(image);

        using var qemu = QemuTarget.StartUser(elf, le);
        var q = qemu.ReadCore();
        if (q.Pc != image.Entry) throw new InvalidOperationException($"QEMU starts at 0x{q.Pc:x}, the ELF entry is 0x{image.Entry:x}");

        var vm = SimulatedMachine.Load(image, new MachineOptions(1, Memory));
        var vcpu = vm.GetVcpu(0);
        var s = vcpu.GetRegisters();
        q.Gpr.CopyTo(s.Gpr, 0);
        s.Cr = q.Cr; s.Xer = q.Xer; s.Lr = q.Lr; s.Ctr = q.Ctr; s.Nip = q.Pc;
        s.Msr = Msr.SF | Msr.ME | (le ? Msr.LE : 0);
        if (compareVector)
        {
            // qemu-user runs a process with FP, VMX and VSX on, as Linux does once it has used them.
            s.Msr |= Msr.FP | Msr.VEC | Msr.VSX;
            var v = qemu.ReadVector();
            v.Fpr.CopyTo(s.Fpr, 0); v.VsrLow.CopyTo(s.VsrLow, 0); v.Vr.CopyTo(s.Vr, 0);
            s.Fpscr = v.Fpscr; s.Vscr = v.Vscr; s.Vrsave = v.Vrsave;
        }
        vcpu.SetRegisters(s);

        var ours = new byte[UserProgram.ScratchSize];
        for (int step = 1; ; step++)
        {
            ulong pc = q.Pc;
            if (pc == end) return new ComparisonResult(step - 1, null);
            if (step > maxSteps) throw new TimeoutException($"{program}\nmore than {maxSteps} steps without reaching end");
            string insn = Describe(vm, pc, le);

            string stop;
            VcpuExit exit;
            if (reservations.TryGetValue(pc, out ulong pairEnd))
            {
                // QemuDepartures.GdbStopLosesReservation: run the pair through in one piece on both sides.
                (stop, exit, int n) = QemuDepartures.RunReservationPair(qemu, vcpu, pairEnd);
                step += n - 1;
                insn += $" … through 0x{pairEnd:x} in one piece";
            }
            else
            {
                stop = qemu.Step();
                exit = vcpu.Run(1);
            }
            if (!stop.StartsWith("T05", StringComparison.Ordinal) && !stop.StartsWith("S05", StringComparison.Ordinal))
                return new ComparisonResult(step, new Mismatch(step, pc, insn, [$"QEMU stopped with '{stop}' (a signal: the instruction faulted there)", $"machine: {exit}"]));
            if (exit.Reason != ExitReason.BudgetExpired)
                return new ComparisonResult(step, new Mismatch(step, pc, insn, [$"machine exited with {exit}"]));

            var before = s;
            q = qemu.ReadCore();
            s = vcpu.GetRegisters();
            byte[] theirs = qemu.ReadMemory(scratch, UserProgram.ScratchSize);
            vm.ReadMemory(scratch, ours);

            var d = new List<string>();
            void Check(string name, ulong a, ulong b) { if (a != b) d.Add($"{name}: qemu 0x{a:x16} machine 0x{b:x16}"); }
            highWordUndefined.TryGetValue(pc, out int undefinedHigh);
            for (int i = 0; i < 32; i++)
            {
                ulong mask = highWordUndefined.ContainsKey(pc) && i == undefinedHigh ? 0xFFFFFFFFUL : ulong.MaxValue;
                Check($"r{i}", q.Gpr[i] & mask, s.Gpr[i] & mask);
            }
            Check("nip", q.Pc, s.Nip);
            Check("cr", q.Cr, s.Cr);
            Check("xer", q.Xer, s.Xer);
            Check("lr", q.Lr, s.Lr);
            Check("ctr", q.Ctr, s.Ctr);
            if (compareVector)
            {
                var v = qemu.ReadVector();
                string mnemonic = insn.Split(' ')[0].TrimEnd('.');
                if (mnemonic is "fre" or "fres"
                    && System.Text.RegularExpressions.Regex.Match(insn, @"^\S+ f(\d+),f(\d+)") is { Success: true } fm)
                {
                    int frt = int.Parse(fm.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
                    int frb = int.Parse(fm.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture);
                    ulong result = s.Fpr[frt];
                    uint fpscrAfter = s.Fpscr;
                    if (UserModeDepartures.ReciprocalEstimateOfZero(mnemonic, before.Fpr[frb], ref result, ref fpscrAfter, v.Fpr[frt]))
                    {
                        s.Fpr[frt] = result;
                        s.Fpscr = fpscrAfter;
                        vcpu.SetRegisters(s);
                    }
                }
                if (mnemonic is "xsaddsp" or "xssubsp" or "xsmulsp" or "xsdivsp"
                    && System.Text.RegularExpressions.Regex.Match(insn, @"^\S+ vs(\d+),vs(\d+),vs(\d+)") is { Success: true } xm)
                {
                    int[] n = [.. Enumerable.Range(1, 3).Select(g => int.Parse(xm.Groups[g].Value, System.Globalization.CultureInfo.InvariantCulture))];
                    ulong Dw0(VcpuState st, int r) => r < 32 ? st.Fpr[r] : st.Vr[2 * (r - 32)];
                    ulong qemuDw0 = n[0] < 32 ? v.Fpr[n[0]] : v.Vr[2 * (n[0] - 32)];
                    if (UserModeDepartures.VsxSingleRoundsTwice(mnemonic, Dw0(before, n[1]), Dw0(before, n[2]), (int)(before.Fpscr & 3), Dw0(s, n[0]), qemuDw0))
                    {
                        if (n[0] < 32) s.Fpr[n[0]] = qemuDw0; else s.Vr[2 * (n[0] - 32)] = qemuDw0;
                        s.Fpscr = v.Fpscr;
                        vcpu.SetRegisters(s);
                    }
                    else if (Dw0(s, n[0]) == qemuDw0
                             && UserModeDepartures.VsxSingleUnderflowRoundsTwice(mnemonic, Dw0(before, n[1]), Dw0(before, n[2]), (int)(before.Fpscr & 3), s.Fpscr, v.Fpscr))
                    {
                        s.Fpscr = v.Fpscr;
                        vcpu.SetRegisters(s);
                    }
                }
                for (int i = 0; i < 32; i++)
                {
                    Check($"f{i}", v.Fpr[i], s.Fpr[i]);
                    Check($"vs{i}.dw1", v.VsrLow[i], s.VsrLow[i]);
                    Check($"v{i}.dw0", v.Vr[2 * i], s.Vr[2 * i]);
                    Check($"v{i}.dw1", v.Vr[2 * i + 1], s.Vr[2 * i + 1]);
                }
                uint fpscr = UserModeDepartures.SetBitLeavesFx(mnemonic, before.Fpscr, s.Fpscr);
                fpscr = UserModeDepartures.SingleDenormalReadsNormal(mnemonic,
                    UserModeDepartures.CompareClearsFi(mnemonic, UserModeDepartures.FpscrWithoutFr(mnemonic, v.Fpscr, fpscr)));
                fpscr = UserModeDepartures.FxOnRepeatedException(v.Fpscr, UserModeDepartures.VectorClearsFi(mnemonic, v.Fpscr, fpscr));
                Check("fpscr", v.Fpscr, fpscr);
                if (fpscr == v.Fpscr && s.Fpscr != v.Fpscr)
                {
                    // A mapped departure: both continue from QEMU's FPSCR, so it is not met again at later instructions. A
                    // record form copied FPSCR[0:3] into CR1: the same departure there, when CR1 is all that differs.
                    uint cr1 = (q.Cr >> 24) & 0xF;
                    if (insn.Split(' ')[0].EndsWith('.') && (q.Cr & ~0x0F000000u) == (s.Cr & ~0x0F000000u) && cr1 == v.Fpscr >> 28
                        && ((s.Cr >> 24) & 0xF) == s.Fpscr >> 28)
                    {
                        d.RemoveAll(x => x.StartsWith("cr:", StringComparison.Ordinal));
                        s.Cr = q.Cr;
                    }
                    s.Fpscr = v.Fpscr;
                    vcpu.SetRegisters(s);
                }
                Check("vscr", v.Vscr, s.Vscr);
                Check("vrsave", v.Vrsave, s.Vrsave);
            }
            for (int i = 0; i < theirs.Length; i++)
                if (theirs[i] != ours[i])
                    d.Add($"scratch+0x{i:x2} (0x{scratch + (ulong)i:x}): qemu 0x{theirs[i]:x2} machine 0x{ours[i]:x2}");
            if (d.Count > 0 && compareVector)
            {
                // The operands as they were before the instruction, for reading the failure.
                foreach (System.Text.RegularExpressions.Match reg in System.Text.RegularExpressions.Regex.Matches(insn, @"\b(f|vs|v)(\d+)\b"))
                {
                    int n = int.Parse(reg.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture);
                    string k = reg.Groups[1].Value;
                    int vsr = k == "v" ? n + 32 : n;
                    ulong hi = vsr < 32 ? before.Fpr[vsr] : before.Vr[2 * (vsr - 32)], lo = vsr < 32 ? before.VsrLow[vsr] : before.Vr[2 * (vsr - 32) + 1];
                    d.Add($"before: {reg.Value} = 0x{hi:x16}_{lo:x16}");
                }
                d.Add($"before: fpscr = 0x{before.Fpscr:x8}");
            }
            if (d.Count > 0) return new ComparisonResult(step, new Mismatch(step, pc, insn, d));
        }
    }

    private static string Describe(SimulatedMachine vm, ulong pc, bool le)
    {
        var b = new byte[4];
        vm.ReadMemory(pc, b);
        uint word = le ? BinaryPrimitives.ReadUInt32LittleEndian(b) : BinaryPrimitives.ReadUInt32BigEndian(b);
        return $"{Disassembler.Format(word, pc)} [0x{word:x8}]";
    }

    /// <summary>Assembles and links for qemu-user: ELFv2, not -N (qemu-user cannot map an unaligned RWX segment), cached by source.</summary>
    public static string BuildElf(string source, bool littleEndian)
    {
        Directory.CreateDirectory(CacheDir);
        string key = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes($"{littleEndian}|{source}")))[..24];
        string elf = Path.Combine(CacheDir, key + ".elf");
        if (File.Exists(elf)) return elf;
        string tmp = Path.Combine(CacheDir, $"{key}.{Environment.ProcessId}.{Guid.NewGuid():N}");
        File.WriteAllText(tmp + ".s", source);
        try
        {
            GuestAssembler.Run(GuestAssembler.Tool(littleEndian, "as"), $"-a64 -mpower9 -mregnames {(littleEndian ? "-mlittle" : "-mbig")} -o {tmp}.o {tmp}.s");
            GuestAssembler.Run(GuestAssembler.Tool(littleEndian, "ld"),
                $"-nostdlib -static --build-id=none --no-warn-rwx-segments -e _start -Ttext=0x{UserProgram.TextAddress:x} -o {tmp}.elf {tmp}.o");
            File.Move(tmp + ".elf", elf, overwrite: true);
        }
        finally
        {
            File.Delete(tmp + ".s");
            File.Delete(tmp + ".o");
        }
        return elf;
    }

    /// <summary>
    /// Delta debugging over the body blocks (then the prologue lines): drops chunks while the program still
    /// fails with the same <see cref="Mismatch.Signature"/>.
    /// </summary>
    public static UserProgram Shrink(UserProgram program, Func<UserProgram, string?> signature)
    {
        string? target = signature(program);
        if (target is null) return program;
        bool Fails(UserProgram p)
        {
            try { return signature(p) == target; }
            catch (Exception e) when (e is TimeoutException or InvalidOperationException or IOException) { return false; }
        }
        var blocks = Minimize(program.Blocks.ToList(), bs => Fails(program.WithBlocks(bs)));
        program = program.WithBlocks(blocks);
        var prologue = Minimize(program.Prologue.ToList(), ls => Fails(program with { Prologue = ls.ToArray() }));
        return program with { Prologue = prologue.ToArray() };
    }

    /// <summary>ddmin-style: remove chunks of halving size while <paramref name="fails"/> holds.</summary>
    public static List<T> Minimize<T>(List<T> items, Func<List<T>, bool> fails)
    {
        for (int chunk = Math.Max(1, items.Count / 2); ; )
        {
            bool removed = false;
            for (int i = 0; i < items.Count;)
            {
                var candidate = items.Take(i).Concat(items.Skip(i + chunk)).ToList();
                if (candidate.Count < items.Count && fails(candidate)) { items = candidate; removed = true; }
                else i += chunk;
            }
            if (!removed)
            {
                if (chunk == 1) return items;
                chunk /= 2;
            }
        }
    }
}
