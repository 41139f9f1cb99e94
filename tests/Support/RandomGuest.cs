using System.Text;

namespace ActorStep.Tests.Support;

/// <summary>
/// Random guest programs drawn from the whole supported instruction set, with handlers that make every
/// interrupt return: the material of the invisibility property (step-engine.md §6 invariants 1, 2, 4).
/// Layout (real addresses): vectors at 0x300–0xD00 and their AIL=3 copies at 0x4300–0x4D00, the program
/// at 0x6000, scratch data at 0x10000 (r2), the guest's own trace log at 0x11000.
/// </summary>
public static class RandomGuest
{
    public const ulong Scratch = 0x10000;
    public const ulong TraceLog = 0x11000;
    public const int ScratchBytes = 0x2000;

    private static readonly string[] Alu3 =
        ["add", "addc", "adde", "subf", "subfc", "subfe", "mullw", "mulld", "mulhw", "mulhwu", "mulhd", "mulhdu",
         "divw", "divwu", "divd", "divdu", "and", "andc", "or", "orc", "xor", "nand", "nor", "eqv", "slw", "srw", "sraw", "sld", "srd", "srad", "rldcl"];
    private static readonly string[] Alu2 = ["neg", "addme", "addze", "subfme", "subfze", "extsb", "extsh", "extsw", "cntlzw", "cntlzd"];
    private static readonly string[] Loads = ["lbz", "lhz", "lha", "lwz", "ld", "lwa"];
    private static readonly string[] Stores = ["stb", "sth", "stw", "std"];
    private static readonly string[] LoadsX = ["lbzx", "lhzx", "lhax", "lwzx", "lwax", "ldx", "lhbrx", "lwbrx", "ldbrx"];
    private static readonly string[] StoresX = ["stbx", "sthx", "stwx", "stdx", "sthbrx", "stwbrx", "stdbrx"];
    private static readonly string[] CrOps = ["crand", "cror", "crxor", "crnand", "crnor", "creqv", "crandc", "crorc"];
    private static readonly int[] DataRegs = [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 15, 16, 17, 18, 19, 20];

    /// <summary>A program of about <paramref name="length"/> random blocks ending with H_ACTORSTEP_STOP.</summary>
    public static string Generate(int seed, int length = 40)
    {
        var rng = new Random(seed);
        var sb = new StringBuilder();
        sb.AppendLine(Handlers());
        sb.AppendLine("    .org 0x6000");
        sb.AppendLine("    .globl _start");
        sb.AppendLine("_start:");
        sb.AppendLine("    lis 2, 1");                        // r2 = scratch
        sb.AppendLine("    lis 22, 0x700");                   // r22 = beyond RAM: loads through it fault
        foreach (int r in DataRegs) sb.AppendLine($"    li {r}, {rng.Next(-32768, 32767)}");
        sb.AppendLine("    lis 3, 0x4000\n    mtdec 3");       // far-away decrementer unless the program sets it
        if (rng.Next(2) == 0) sb.AppendLine(RelocateOn(rng.Next(2) == 0 ? 3 : 0));
        int label = 0;
        for (int i = 0; i < length; i++) sb.AppendLine(Block(rng, ref label));
        sb.AppendLine("    li 3, 0\n    ori 3, 3, 0xF080\n    li 4, 0\n    sc 1");
        sb.AppendLine("    b .");
        return sb.ToString();
    }

    private static string R(Random rng) => DataRegs[rng.Next(DataRegs.Length)].ToString();

    private static string Block(Random rng, ref int label, bool selfTracing = false)
    {
        int k = rng.Next(100);
        string rc = rng.Next(3) == 0 ? "." : "";
        string oe = rng.Next(4) == 0 ? "o" : "";
        switch (k)
        {
            case < 20:
            {
                string op = Alu3[rng.Next(Alu3.Length)];
                bool xo = op is "add" or "addc" or "adde" or "subf" or "subfc" or "subfe" or "mullw" or "mulld" or "divw" or "divwu" or "divd" or "divdu";
                if (op == "rldcl") return $"    rldcl{rc} {R(rng)}, {R(rng)}, {R(rng)}, {rng.Next(64)}";
                return $"    {op}{(xo ? oe : "")}{rc} {R(rng)}, {R(rng)}, {R(rng)}";
            }
            case < 26:
            {
                string op = Alu2[rng.Next(Alu2.Length)];
                bool xo = op is "neg" or "addme" or "addze" or "subfme" or "subfze";
                return $"    {op}{(xo ? oe : "")}{rc} {R(rng)}, {R(rng)}";
            }
            case < 34:
                return rng.Next(9) switch
                {
                    0 => $"    addi {R(rng)}, {R(rng)}, {rng.Next(-32768, 32767)}",
                    1 => $"    addis {R(rng)}, {R(rng)}, {rng.Next(-32768, 32767)}",
                    2 => $"    addic{rc} {R(rng)}, {R(rng)}, {rng.Next(-32768, 32767)}",
                    3 => $"    subfic {R(rng)}, {R(rng)}, {rng.Next(-32768, 32767)}",
                    4 => $"    mulli {R(rng)}, {R(rng)}, {rng.Next(-32768, 32767)}",
                    5 => $"    ori {R(rng)}, {R(rng)}, {rng.Next(65536)}",
                    6 => $"    xoris {R(rng)}, {R(rng)}, {rng.Next(65536)}",
                    7 => $"    andi. {R(rng)}, {R(rng)}, {rng.Next(65536)}",
                    _ => $"    andis. {R(rng)}, {R(rng)}, {rng.Next(65536)}",
                };
            case < 42:
                return rng.Next(8) switch
                {
                    0 => $"    rlwinm{rc} {R(rng)}, {R(rng)}, {rng.Next(32)}, {rng.Next(32)}, {rng.Next(32)}",
                    1 => $"    rlwimi{rc} {R(rng)}, {R(rng)}, {rng.Next(32)}, {rng.Next(32)}, {rng.Next(32)}",
                    2 => $"    rldicl{rc} {R(rng)}, {R(rng)}, {rng.Next(64)}, {rng.Next(64)}",
                    3 => $"    rldicr{rc} {R(rng)}, {R(rng)}, {rng.Next(64)}, {rng.Next(64)}",
                    4 => $"    rldic{rc} {R(rng)}, {R(rng)}, {rng.Next(64)}, {rng.Next(64)}",
                    5 => $"    rldimi{rc} {R(rng)}, {R(rng)}, {rng.Next(64)}, {rng.Next(64)}",
                    6 => $"    srawi{rc} {R(rng)}, {R(rng)}, {rng.Next(32)}",
                    _ => $"    sradi{rc} {R(rng)}, {R(rng)}, {rng.Next(64)}",
                };
            case < 48:
                return rng.Next(6) switch
                {
                    0 => $"    cmpd {rng.Next(8)}, {R(rng)}, {R(rng)}",
                    1 => $"    cmplw {rng.Next(8)}, {R(rng)}, {R(rng)}",
                    2 => $"    cmpdi {rng.Next(8)}, {R(rng)}, {rng.Next(-32768, 32767)}",
                    3 => $"    {CrOps[rng.Next(CrOps.Length)]} {rng.Next(32)}, {rng.Next(32)}, {rng.Next(32)}",
                    4 => $"    isel {R(rng)}, {R(rng)}, {R(rng)}, {rng.Next(32)}",
                    _ => rng.Next(2) == 0 ? $"    mfcr {R(rng)}" : $"    mtcrf {rng.Next(256)}, {R(rng)}",
                };
            case < 58:
            {
                int off = rng.Next(0, 512) * 8;
                return rng.Next(5) switch
                {
                    0 => $"    {Loads[rng.Next(Loads.Length)]} {R(rng)}, {(off & ~3)}(2)",
                    1 => $"    {Stores[rng.Next(Stores.Length)]} {R(rng)}, {off}(2)",
                    2 => $"    li 21, {off}\n    {LoadsX[rng.Next(LoadsX.Length)]} {R(rng)}, 2, 21",
                    3 => $"    li 21, {off}\n    {StoresX[rng.Next(StoresX.Length)]} {R(rng)}, 2, 21",
                    _ => $"    addi 21, 2, {off}\n    ldu {R(rng)}, 8(21)\n    stwu {R(rng)}, 4(21)",
                };
            }
            case < 61 when selfTracing:
                // Each of the guest's own Trace interrupts ends a host step, a trip to the host that loses the reservation (as on
                // any real host): the pair would fail debugged and succeed undebugged. Plain accesses instead, same random draws.
                return $"    addi 21, 2, {rng.Next(0, 64) * 8}\n    lwz {R(rng)}, 0(21)\n    stw {R(rng)}, 0(21)\n    ld {R(rng)}, 0(21)\n    std {R(rng)}, 0(21)";
            case < 61: // atomic sequences: each pair is one host step
                return $"    addi 21, 2, {rng.Next(0, 64) * 8}\n    lwarx {R(rng)}, 0, 21\n    stwcx. {R(rng)}, 0, 21\n    ldarx {R(rng)}, 0, 21\n    stdcx. {R(rng)}, 0, 21";
            case < 63: // a load that faults (DSI: the handler skips it)
                return $"    ld {R(rng)}, 0(22)";
            case < 65: // unaligned load-reserve (alignment interrupt)
                return $"    addi 21, 2, 2\n    lwarx {R(rng)}, 0, 21";
            case < 68: // the guest's own SRR0/SRR1 and SPRGs
                return rng.Next(4) switch
                {
                    0 => $"    mtsrr0 {R(rng)}",
                    1 => $"    mtsrr1 {R(rng)}",
                    2 => $"    mfsrr0 {R(rng)}\n    mfsrr1 {R(rng)}",
                    _ => $"    mtsprg 3, {R(rng)}\n    mfsprg {R(rng)}, 3",
                };
            case < 71: // mfmsr and mtmsrd L=1 (EE/RI)
                return $"    mfmsr {R(rng)}\n    li 23, 0\n    ori 23, 23, {(rng.Next(2) == 0 ? 0x8002 : 0x2)}\n    mtmsrd 23, 1";
            case < 74: // the guest single-steps itself for a few instructions (mtmsrd sets SE, then clears it)
            {
                var sb = new StringBuilder();
                sb.AppendLine("    mfmsr 23\n    ori 23, 23, 0x400\n    mtmsrd 23");
                for (int i = 0, n = rng.Next(1, 5); i < n; i++) sb.AppendLine(Block(rng, ref label, selfTracing: true).TrimEnd());
                sb.Append("    mfmsr 23\n    li 24, 0x400\n    andc 23, 23, 24\n    mtmsrd 23"); // clear SE
                return sb.ToString();
            }
            case < 77 when selfTracing: // the guest's Trace handler would overwrite SRR0/SRR1 before an rfid
                return "    nop";
            case < 77: // rfid to the next block, sometimes with the guest's own SE in SRR1 (then cleared)
            {
                int l = label++;
                bool se = rng.Next(2) == 0;
                // EE off first, as a kernel does: an interrupt between mtsrr0 and rfid would overwrite SRR0/SRR1.
                return $"    li 23, 2\n    mtmsrd 23, 1\n    bl 90{l}f\n90{l}: mflr 24\n    addi 24, 24, 28\n    mtsrr0 24\n    mfmsr 25\n" +
                       (se ? "    ori 25, 25, 0x400\n" : "    nop\n") +
                       $"    mtsrr1 25\n    rfid\n    nop\n    mfmsr 23\n    li 24, 0x400\n    andc 23, 23, 24\n    mtmsrd 23";
            }
            case < 80:
                return $"    li 0, {rng.Next(3)}\n    sc";
            case < 83: // traps: taken (program interrupt, handler skips) or not
                return rng.Next(3) switch
                {
                    0 => $"    tw 4, {R(rng)}, {R(rng)}",
                    1 => $"    tdi {rng.Next(32)}, {R(rng)}, {rng.Next(-100, 100)}",
                    _ => $"    twi 0, {R(rng)}, 0",
                };
            case < 90: // branches: forward conditional, a call, a counted loop
            {
                int l = label++;
                return rng.Next(3) switch
                {
                    0 => $"    cmpdi {R(rng)}, {rng.Next(-100, 100)}\n    b{(rng.Next(2) == 0 ? "lt" : "ge")} 91{l}f\n    addi {R(rng)}, {R(rng)}, 1\n91{l}:",
                    1 => $"    bl leaf",
                    _ => $"    li 23, {rng.Next(1, 4)}\n    mtctr 23\n92{l}: addi {R(rng)}, {R(rng)}, 3\n    bdnz 92{l}b",
                };
            }
            case < 93: // H_SET_MODE changes AIL between steps
                return $"    li 3, 0x31C\n    li 4, {(rng.Next(2) == 0 ? 3 : 0)}\n    li 5, 3\n    li 6, 0\n    li 7, 0\n    sc 1";
            case < 95: // a decrementer that falls due soon (taken when MSR[EE]=1)
                return $"    li 23, {rng.Next(1, 30)}\n    mtdec 23";
            case < 97: // illegal instruction (program interrupt)
                return "    .long 0x7c0002e8";
            default:
                return $"    mtmsrd {R(rng)}, 1";
        }
    }

    /// <summary>Turns on relocation (and optionally AIL) and continues at the 0xC000… alias of the next label.</summary>
    private static string RelocateOn(int ail) =>
        $"    li 3, 0x31C\n    li 4, {ail}\n    li 5, 3\n    li 6, 0\n    li 7, 0\n    sc 1\n" +
        "    bl 1f\n1:  mflr 24\n    addi 24, 24, 40\n    lis 25, 0xC000\n    sldi 25, 25, 32\n    or 24, 24, 25\n" +
        "    mtsrr0 24\n    mfmsr 25\n    ori 25, 25, 0x30\n    mtsrr1 25\n    rfid";

    /// <summary>Handlers at the real-mode vectors and their AIL=3 copies; each makes its interrupt return.</summary>
    private static string Handlers()
    {
        var sb = new StringBuilder();
        sb.AppendLine("    .text");
        foreach (int baseAddr in new[] { 0, 0x4000 })
        {
            // DSI, alignment, program: skip the instruction.
            foreach (int v in new[] { 0x300, 0x400, 0x600, 0x700, 0x800 })
                sb.AppendLine($"    .org 0x{baseAddr + v:x}\n    mtsprg 0, 3\n    mfsrr0 3\n    addi 3, 3, 4\n    mtsrr0 3\n    mfsprg 3, 0\n    rfid");
            // Decrementer: push it far away.
            sb.AppendLine($"    .org 0x{baseAddr + 0x900:x}\n    mtsprg 0, 3\n    lis 3, 0x4000\n    mtdec 3\n    mfsprg 3, 0\n    rfid");
            // System call: r3 += r0 + 1.
            sb.AppendLine($"    .org 0x{baseAddr + 0xC00:x}\n    add 3, 3, 0\n    addi 3, 3, 1\n    rfid");
            // The guest's own Trace handler: log SRR0 and SRR1, count, return (SRR1 keeps SE).
            sb.AppendLine($"    .org 0x{baseAddr + 0xD00:x}\n    mtsprg 0, 3\n    mtsprg 1, 4\n    lis 3, 1\n    ori 3, 3, 0x1000\n" +
                          "    ld 4, 0(3)\n    addi 4, 4, 1\n    std 4, 0(3)\n    rldicl 4, 4, 4, 52\n    add 3, 3, 4\n" +
                          "    mfsrr0 4\n    std 4, 0(3)\n    mfsrr1 4\n    std 4, 8(3)\n    mfsprg 4, 1\n    mfsprg 3, 0\n    rfid");
        }
        sb.AppendLine("    .org 0x5f00\nleaf:\n    addi 3, 3, 7\n    rlwinm 4, 3, 3, 0, 28\n    blr");
        return sb.ToString();
    }
}
