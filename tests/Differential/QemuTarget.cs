using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace ActorStep.Tests.Differential;

/// <summary>The registers of QEMU's ppc64 gdb core feature (power64-core.xml), as the <c>g</c> packet returns them.</summary>
internal sealed record CoreRegisters(ulong[] Gpr, ulong Pc, ulong Msr, uint Cr, ulong Lr, ulong Ctr, uint Xer)
{
    /// <summary>r0–r31 (8 bytes each), pc, msr, cr (4), lr, ctr, xer (4): 296 bytes in the register byte order.</summary>
    public static CoreRegisters Parse(string hex, bool littleEndian)
    {
        byte[] b = Convert.FromHexString(hex);
        if (b.Length < 296) throw new InvalidDataException($"'g' reply of {b.Length} bytes, expected 296: {hex}");
        ulong U64(int at) => littleEndian ? BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(at)) : BinaryPrimitives.ReadUInt64BigEndian(b.AsSpan(at));
        uint U32(int at) => littleEndian ? BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(at)) : BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(at));
        var gpr = new ulong[32];
        for (int i = 0; i < 32; i++) gpr[i] = U64(8 * i);
        return new CoreRegisters(gpr, U64(256), U64(264), U32(272), U64(276), U64(284), U32(292));
    }
}

/// <summary>FP, VMX and VSX registers as QEMU's gdbstub shows them (the machine's VcpuState has the same fields).</summary>
internal sealed class VectorRegisters
{
    public ulong[] Fpr { get; } = new ulong[32];
    public ulong[] VsrLow { get; } = new ulong[32];
    public ulong[] Vr { get; } = new ulong[64];
    public uint Fpscr { get; set; }
    public uint Vscr { get; set; }
    public uint Vrsave { get; set; }
}

/// <summary>
/// One QEMU process under gdbstub control: user mode (<c>qemu-ppc64le</c>/<c>qemu-ppc64</c>) or bare metal
/// (<c>qemu-system-ppc64 -M powernv9</c>). The stub listens on a Unix-domain socket in a private temporary
/// directory, so nothing is reachable from the network. Disposing kills the process.
/// </summary>
internal sealed class QemuTarget : IDisposable
{
    private readonly Process _process;
    private readonly string _dir;
    private readonly bool _registersLittleEndian;

    private QemuTarget(Process process, string dir, RspClient rsp, bool registersLittleEndian)
    {
        _process = process;
        _dir = dir;
        Rsp = rsp;
        _registersLittleEndian = registersLittleEndian;
    }

    public RspClient Rsp { get; }

    private System.Text.StringBuilder _console = new();

    /// <summary>What the guest wrote to QEMU's stdout (a pseries guest's hvc0 when started by <see cref="StartSystem"/>), by lines.</summary>
    public string Console { get { lock (_console) return _console.ToString(); } }

    public static bool Available(string tool) =>
        Environment.GetEnvironmentVariable("PATH")!.Split(':').Any(d => File.Exists(Path.Combine(d, tool)));

    /// <summary>The version <c>TOOL --version</c> reports ("QEMU emulator version 7.2.22 (Debian …)" → 7.2.22).</summary>
    public static Version ToolVersion(string tool)
    {
        var psi = new ProcessStartInfo(tool, "--version") { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {tool}");
        string text = p.StandardOutput.ReadToEnd();
        p.WaitForExit(10_000);
        var m = Regex.Match(text, @"version (\d+)\.(\d+)(?:\.(\d+))?");
        if (!m.Success) throw new InvalidDataException($"{tool} --version printed no version: {text}");
        return new Version(int.Parse(m.Groups[1].Value), int.Parse(m.Groups[2].Value), m.Groups[3].Success ? int.Parse(m.Groups[3].Value) : 0);
    }

    /// <summary>Starts <paramref name="elf"/> under qemu-user, stopped at its entry.</summary>
    public static QemuTarget StartUser(string elf, bool littleEndian)
    {
        string tool = littleEndian ? "qemu-ppc64le" : "qemu-ppc64";
        return Start(tool, sock => ["-g", sock, elf], registersLittleEndian: littleEndian);
    }

    /// <summary>
    /// Starts a powernv machine on <paramref name="image"/> as its firmware (-bios), stopped before the first instruction.
    /// <paramref name="machine"/>: the tests pass <see cref="PowerNvDepartures.Power9Machine"/> ("powernv9", POWER9 in every
    /// version, as the machine models); plain "powernv" is POWER9 up to QEMU 8.2 and POWER10 from 9.0.
    /// </summary>
    public static QemuTarget StartPowerNv(string image, string machine) =>
        Start("qemu-system-ppc64", sock =>
        [
            "-M", machine, "-bios", image, "-nographic", "-nodefaults", "-serial", "none", "-monitor", "none",
            "-S", "-gdb", $"unix:{sock},server=on,wait=off",
        ], registersLittleEndian: false);

    /// <summary>
    /// Starts <c>qemu-system-ppc64</c> with <paramref name="args"/> and what ActorStep's QEMU backend adds to a QEMU it starts
    /// (<see cref="ActorStep.Backends.Qemu.QemuProcess.AddedArguments"/>: the same devices, so the same guest), paused before
    /// the first instruction: the twin of a VM the backend runs.
    /// </summary>
    public static QemuTarget StartSystem(IReadOnlyList<string> args, bool registersLittleEndian) =>
        Start("qemu-system-ppc64", sock => [.. args, .. ActorStep.Backends.Qemu.QemuProcess.AddedArguments(args, sock)], registersLittleEndian);

    private static QemuTarget Start(string tool, Func<string, string[]> args, bool registersLittleEndian)
    {
        string dir = Directory.CreateTempSubdirectory("actorstep-qemu-").FullName;
        string sock = Path.Combine(dir, "gdb.sock");
        var psi = new ProcessStartInfo(tool) { RedirectStandardError = true, RedirectStandardOutput = true, RedirectStandardInput = true };
        foreach (string a in args(sock)) psi.ArgumentList.Add(a);
        var p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {tool}");
        var console = new System.Text.StringBuilder();
        p.OutputDataReceived += (_, e) => { if (e.Data is { } line) lock (console) console.Append(line).Append('\n'); };
        p.ErrorDataReceived += (_, _) => { };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        try
        {
            var rsp = RspClient.ConnectUnix(sock, TimeSpan.FromSeconds(20), () => !p.HasExited);
            var t = new QemuTarget(p, dir, rsp, registersLittleEndian) { _console = console };
            // QEMU 7.2 answers 'p' with an empty reply (and aborts on 'g') until gdb has read the target
            // description: reading target.xml is what tells its stub that the client knows the layout.
            rsp.Request("qSupported:swbreak+;xmlRegisters=powerpc");
            string xml = rsp.Request("qXfer:features:read:target.xml:0,ffff");
            if (!xml.Contains("power64-core.xml")) throw new InvalidDataException($"unexpected target description: {xml}");
            rsp.Request("?");
            return t;
        }
        catch
        {
            Kill(p);
            Directory.Delete(dir, true);
            throw;
        }
    }

    private Dictionary<string, int>? _registerNumbers;

    /// <summary>
    /// A register's gdb number, from the target description QEMU sends (target.xml and the features it includes), as gdb
    /// numbers them: in order, a <c>regnum</c> attribute setting the number of its register and those after it. The
    /// core registers are fixed (pc = 64, msr = 65); the SPRs come from the dynamic feature <c>org.qemu.power.spr</c>
    /// (annex power-spr.xml), whose numbers depend on the CPU model and the QEMU version: look them up, never hard-code them.
    /// </summary>
    public int RegisterNumber(string name)
    {
        _registerNumbers ??= ReadRegisterNumbers();
        return _registerNumbers.TryGetValue(name, out int n) ? n
            : throw new KeyNotFoundException($"QEMU's target description names no register '{name}'");
    }

    private Dictionary<string, int> ReadRegisterNumbers()
    {
        // Read with patterns, not an XML parser: QEMU's target.xml uses the xi: prefix without declaring it.
        var numbers = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        int next = 0;
        void Registers(string xml)
        {
            foreach (Match reg in Regex.Matches(xml, @"<reg\s[^>]*>"))
            {
                var regnum = Regex.Match(reg.Value, @"\sregnum=""(\d+)""");
                if (regnum.Success) next = int.Parse(regnum.Groups[1].Value, CultureInfo.InvariantCulture);
                numbers.TryAdd(Regex.Match(reg.Value, @"\sname=""([^""]+)""").Groups[1].Value, next++);
            }
        }
        string target = ReadFeature("target.xml");
        Registers(target);
        foreach (Match include in Regex.Matches(target, @"<xi:include\s+href=""([^""]+)"""))
            Registers(ReadFeature(include.Groups[1].Value));
        return numbers;
    }

    /// <summary>One annex of the target description, read with qXfer in pieces ('m': more follows, 'l': the last).</summary>
    private string ReadFeature(string annex)
    {
        var text = new System.Text.StringBuilder();
        while (true)
        {
            string reply = Rsp.Request($"qXfer:features:read:{annex}:{text.Length:x},7f0");
            if (reply.Length == 0 || (reply[0] != 'm' && reply[0] != 'l'))
                throw new InvalidDataException($"qXfer:features:read:{annex}: '{reply}'");
            text.Append(reply, 1, reply.Length - 1);
            if (reply[0] == 'l' || reply.Length == 1) return text.ToString();
        }
    }

    /// <summary>Reads one register by its gdb number (<c>p</c>): SPRs are not in the <c>g</c> reply.</summary>
    public ulong ReadRegister(int number)
    {
        byte[] b = Convert.FromHexString(Expect(Rsp.Request($"p{number:x}")));
        if (b.Length != 8) throw new InvalidDataException($"register {number}: {b.Length} bytes, expected 8");
        return _registersLittleEndian ? BinaryPrimitives.ReadUInt64LittleEndian(b) : BinaryPrimitives.ReadUInt64BigEndian(b);
    }

    public ulong ReadRegister(string name) => ReadRegister(RegisterNumber(name));

    /// <summary>A register's raw bytes as <c>p</c> returns them (vr0–vr31 are 16 bytes).</summary>
    public byte[] ReadRegisterBytes(string name) => Convert.FromHexString(Expect(Rsp.Request($"p{RegisterNumber(name):x}")));

    /// <summary>A 4- or 8-byte register in the stub's register byte order.</summary>
    public ulong ReadSized(string name)
    {
        byte[] b = ReadRegisterBytes(name);
        return b.Length switch
        {
            4 => _registersLittleEndian ? BinaryPrimitives.ReadUInt32LittleEndian(b) : BinaryPrimitives.ReadUInt32BigEndian(b),
            8 => _registersLittleEndian ? BinaryPrimitives.ReadUInt64LittleEndian(b) : BinaryPrimitives.ReadUInt64BigEndian(b),
            _ => throw new InvalidDataException($"register {name}: {b.Length} bytes"),
        };
    }

    /// <summary>
    /// The FP, VMX and VSX state from QEMU's power-fpu, power-altivec and power-vsx features: f0–f31 (VSR0–31 doubleword 0),
    /// vs0h–vs31h (their doubleword 1), vr0–vr31 as (doubleword 0, doubleword 1), fpscr, vscr, vrsave.
    /// </summary>
    public VectorRegisters ReadVector()
    {
        var s = new VectorRegisters();
        for (int n = 0; n < 32; n++)
        {
            s.Fpr[n] = ReadSized($"f{n}");
            s.VsrLow[n] = ReadSized($"vs{n}h");
            byte[] v = ReadRegisterBytes($"vr{n}");
            // A 128-bit value in the register byte order: little-endian puts doubleword 1 first.
            s.Vr[2 * n] = _registersLittleEndian ? BinaryPrimitives.ReadUInt64LittleEndian(v.AsSpan(8)) : BinaryPrimitives.ReadUInt64BigEndian(v);
            s.Vr[2 * n + 1] = _registersLittleEndian ? BinaryPrimitives.ReadUInt64LittleEndian(v) : BinaryPrimitives.ReadUInt64BigEndian(v.AsSpan(8));
        }
        s.Fpscr = (uint)ReadSized("fpscr");
        s.Vscr = (uint)ReadSized("vscr");
        s.Vrsave = (uint)ReadSized("vrsave");
        return s;
    }

    /// <summary>Writes one register by its gdb number (<c>P</c>).</summary>
    public void WriteRegister(string name, ulong value)
    {
        var b = new byte[8];
        if (_registersLittleEndian) BinaryPrimitives.WriteUInt64LittleEndian(b, value);
        else BinaryPrimitives.WriteUInt64BigEndian(b, value);
        Ok(Rsp.Request($"P{RegisterNumber(name):x}={Convert.ToHexString(b).ToLowerInvariant()}"));
    }

    public CoreRegisters ReadCore() => CoreRegisters.Parse(Expect(Rsp.Request("g")), _registersLittleEndian);

    /// <summary>Steps one instruction; returns the stop reply (T05… for a completed step).</summary>
    public string Step() => Rsp.Request("s");

    public string Continue(TimeSpan timeout)
    {
        var old = Rsp.ReplyTimeout;
        Rsp.ReplyTimeout = timeout;
        try { return Rsp.Request("c"); }
        finally { Rsp.ReplyTimeout = old; }
    }

    /// <summary>
    /// Continues; if the target has not stopped within <paramref name="timeout"/>, interrupts it (^C) so a test can say
    /// where it was instead of failing on a socket timeout. Returns the stop reply and whether it was the interrupt's.
    /// </summary>
    public (string Stop, bool Interrupted) ContinueOrInterrupt(TimeSpan timeout)
    {
        var old = Rsp.ReplyTimeout;
        Rsp.ReplyTimeout = timeout;
        try { return (Rsp.Request("c"), false); }
        catch (System.Net.Sockets.SocketException e) when (e.SocketErrorCode == System.Net.Sockets.SocketError.TimedOut)
        {
            Rsp.ReplyTimeout = TimeSpan.FromSeconds(10);
            Rsp.Interrupt();
            return (Rsp.ReceivePacket(), true);
        }
        finally { Rsp.ReplyTimeout = old; }
    }

    public void InsertBreakpoint(ulong address) => Ok(Rsp.Request($"Z0,{address:x},4"));

    public void RemoveBreakpoint(ulong address) => Ok(Rsp.Request($"z0,{address:x},4"));

    public byte[] ReadMemory(ulong address, int length)
    {
        var result = new byte[length];
        for (int done = 0; done < length;)
        {
            int n = Math.Min(length - done, 0x400);
            byte[] chunk = Convert.FromHexString(Expect(Rsp.Request($"m{address + (ulong)done:x},{n:x}")));
            chunk.CopyTo(result, done);
            done += chunk.Length;
            if (chunk.Length == 0) throw new InvalidDataException($"empty memory read at 0x{address + (ulong)done:x}");
        }
        return result;
    }

    public static ulong ParseHex(string s) => ulong.Parse(s, NumberStyles.HexNumber, CultureInfo.InvariantCulture);

    private static string Expect(string reply) =>
        reply.Length == 0 || (reply[0] == 'E' && reply.Length == 3) ? throw new InvalidOperationException($"gdbstub refused: '{reply}'") : reply;

    private static void Ok(string reply)
    {
        if (reply != "OK") throw new InvalidOperationException($"gdbstub refused: '{reply}'");
    }

    private static void Kill(Process p)
    {
        try
        {
            if (!p.HasExited) p.Kill(entireProcessTree: true);
            p.WaitForExit(5000);
        }
        catch (InvalidOperationException) { }
        p.Dispose();
    }

    public void Dispose()
    {
        Rsp.Dispose();
        Kill(_process);
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }
}
