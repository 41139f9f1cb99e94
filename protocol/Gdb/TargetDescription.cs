using System.Text;

namespace ActorStep.Protocol.Gdb;

/// <summary>One register as the target description declares it.</summary>
/// <param name="Regnum">gdb's register number: the index in <c>g</c>, the number in <c>p</c>/<c>P</c> and expedited stop replies.</param>
/// <param name="Size">Width in bytes.</param>
public sealed record GdbRegister(string Name, int Regnum, int Size, string Type, string Feature, string? Group = null);

/// <summary>
/// The target description served as <c>target.xml</c> through <c>qXfer:features:read</c> (gdb manual, "Target
/// Description Format" and "PowerPC Features"). Register numbers, the contract with the register catalogue
/// (protocol/Registers/PowerRegisters.cs) and with every <c>p</c>/<c>P</c>/<c>g</c>:
/// <list type="table">
/// <item><term>0–31</term><description>r0–r31, 64-bit (<c>org.gnu.gdb.power.core</c>)</description></item>
/// <item><term>32–63</term><description>f0–f31, 64-bit (<c>org.gnu.gdb.power.fpu</c>)</description></item>
/// <item><term>64</term><description>pc (NIP), 64-bit</description></item>
/// <item><term>65</term><description>msr, 64-bit</description></item>
/// <item><term>66</term><description>cr, 32-bit</description></item>
/// <item><term>67</term><description>lr, 64-bit</description></item>
/// <item><term>68</term><description>ctr, 64-bit</description></item>
/// <item><term>69</term><description>xer, 32-bit</description></item>
/// <item><term>70</term><description>fpscr, 32-bit (fpu feature)</description></item>
/// <item><term>71</term><description>srr0, 64-bit (<c>org.actorstep.power.spr</c>, group "system")</description></item>
/// <item><term>72</term><description>srr1, 64-bit</description></item>
/// <item><term>73–76</term><description>sprg0–sprg3, 64-bit</description></item>
/// <item><term>77</term><description>dar, 64-bit</description></item>
/// <item><term>78</term><description>dsisr, 32-bit</description></item>
/// <item><term>79</term><description>dec, 32-bit</description></item>
/// <item><term>80</term><description>lpcr, 64-bit</description></item>
/// <item><term>81</term><description>pir, 64-bit</description></item>
/// <item><term>82</term><description>pvr, 64-bit</description></item>
/// <item><term>83</term><description>tb, 64-bit</description></item>
/// </list>
/// The SPRs are in gdb's "system" register group: <c>info registers system</c> or <c>info all-registers</c> shows
/// them, plain <c>info registers</c> stays as short as on real hardware. The XML cannot say the byte order
/// (see <see cref="GdbSession"/> for the rule).
/// </summary>
public static class TargetDescription
{
    public const string CoreFeature = "org.gnu.gdb.power.core";
    public const string FpuFeature = "org.gnu.gdb.power.fpu";
    public const string SprFeature = "org.actorstep.power.spr";
    public const string Architecture = "powerpc:common64";

    public const int Pc = 64, Msr = 65, Cr = 66, Lr = 67, Ctr = 68, Xer = 69, Fpscr = 70;
    public const int Srr0 = 71, Srr1 = 72, Sprg0 = 73, Dar = 77, Dsisr = 78, Dec = 79, Lpcr = 80, Pir = 81, Pvr = 82, Tb = 83;
    public const int R1 = 1;

    /// <summary>Every register, in regnum order (which is also <c>g</c> order: no gaps).</summary>
    public static IReadOnlyList<GdbRegister> Registers { get; } = Build();

    /// <summary>Size of a full <c>g</c> reply in bytes.</summary>
    public static int GPacketBytes { get; } = Registers.Sum(r => r.Size);

    public static GdbRegister? Find(int regnum) => regnum >= 0 && regnum < Registers.Count ? Registers[regnum] : null;

    /// <summary>The XML as served: one document with every feature inline.</summary>
    public static string TargetXml { get; } = BuildXml();

    /// <summary>The annexes <c>qXfer:features:read</c> serves.</summary>
    public static byte[]? Annex(string name) => name == "target.xml" ? Encoding.UTF8.GetBytes(TargetXml) : null;

    private static List<GdbRegister> Build()
    {
        var regs = new List<GdbRegister>();
        for (int i = 0; i < 32; i++) regs.Add(new($"r{i}", i, 8, "uint64", CoreFeature));
        for (int i = 0; i < 32; i++) regs.Add(new($"f{i}", 32 + i, 8, "ieee_double", FpuFeature));
        regs.Add(new("pc", Pc, 8, "code_ptr", CoreFeature));
        regs.Add(new("msr", Msr, 8, "uint64", CoreFeature));
        regs.Add(new("cr", Cr, 4, "uint32", CoreFeature));
        regs.Add(new("lr", Lr, 8, "code_ptr", CoreFeature));
        regs.Add(new("ctr", Ctr, 8, "uint64", CoreFeature));
        regs.Add(new("xer", Xer, 4, "uint32", CoreFeature));
        regs.Add(new("fpscr", Fpscr, 4, "uint32", FpuFeature, "float"));
        void Spr(string name, int regnum, int size) => regs.Add(new(name, regnum, size, size == 8 ? "uint64" : "uint32", SprFeature, "system"));
        Spr("srr0", Srr0, 8);
        Spr("srr1", Srr1, 8);
        for (int i = 0; i < 4; i++) Spr($"sprg{i}", Sprg0 + i, 8);
        Spr("dar", Dar, 8);
        Spr("dsisr", Dsisr, 4);
        Spr("dec", Dec, 4);
        Spr("lpcr", Lpcr, 8);
        Spr("pir", Pir, 8);
        Spr("pvr", Pvr, 8);
        Spr("tb", Tb, 8);
        for (int i = 0; i < regs.Count; i++)
            if (regs[i].Regnum != i) throw new InvalidOperationException($"register {regs[i].Name} out of order");
        return regs;
    }

    private static string BuildXml()
    {
        var sb = new StringBuilder();
        sb.Append("<?xml version=\"1.0\"?>\n<!DOCTYPE target SYSTEM \"gdb-target.dtd\">\n<target version=\"1.0\">\n");
        sb.Append($"  <architecture>{Architecture}</architecture>\n");
        foreach (var feature in new[] { CoreFeature, FpuFeature, SprFeature })
        {
            sb.Append($"  <feature name=\"{feature}\">\n");
            foreach (var r in Registers.Where(r => r.Feature == feature))
            {
                sb.Append($"    <reg name=\"{r.Name}\" bitsize=\"{r.Size * 8}\" type=\"{r.Type}\" regnum=\"{r.Regnum}\"");
                if (r.Group is not null) sb.Append($" group=\"{r.Group}\"");
                sb.Append("/>\n");
            }
            sb.Append("  </feature>\n");
        }
        sb.Append("</target>\n");
        return sb.ToString();
    }
}
