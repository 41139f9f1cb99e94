using System.Text;
using ActorStep.Protocol.Registers;

namespace ActorStep.Protocol.Gdb;

/// <summary>One register as the target description declares it.</summary>
/// <param name="Regnum">gdb's register number: the index in <c>g</c>, the number in <c>p</c>/<c>P</c> and expedited stop replies.</param>
/// <param name="Size">Width in bytes.</param>
public sealed record GdbRegister(string Name, int Regnum, int Size, string Type, string Feature, string? Group = null);

/// <summary>
/// The target description served as <c>target.xml</c> through <c>qXfer:features:read</c> (gdb manual, "Target
/// Description Format" and "PowerPC Features"), generated from the register catalogue
/// (<see cref="PowerRegisters"/>). Register numbers, the contract with every <c>p</c>/<c>P</c>/<c>g</c>:
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

    public const int Pc = PowerRegisters.Pc, Msr = PowerRegisters.Msr, Cr = PowerRegisters.Cr, Lr = PowerRegisters.Lr,
        Ctr = PowerRegisters.Ctr, Xer = PowerRegisters.Xer, Fpscr = PowerRegisters.Fpscr;
    public const int Srr0 = PowerRegisters.Srr0, Srr1 = PowerRegisters.Srr1, Sprg0 = PowerRegisters.Sprg0, Dar = PowerRegisters.Dar,
        Dsisr = PowerRegisters.Dsisr, Dec = PowerRegisters.Dec, Lpcr = PowerRegisters.Lpcr, Pir = PowerRegisters.Pir,
        Pvr = PowerRegisters.Pvr, Tb = PowerRegisters.Tb;
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

    private static List<GdbRegister> Build() => PowerRegisters.All.Select(r => r.Feature switch
    {
        RegisterFeature.Core => new GdbRegister(r.GdbName, r.GdbNumber, r.Bits / 8,
            r.GdbNumber is Pc or Lr ? "code_ptr" : $"uint{r.Bits}", CoreFeature),
        // fpscr is in gdb's "float" group; the FPRs are doubles.
        RegisterFeature.Fpu => new GdbRegister(r.GdbName, r.GdbNumber, r.Bits / 8,
            r.GdbNumber == Fpscr ? "uint32" : "ieee_double", FpuFeature, r.GdbNumber == Fpscr ? "float" : null),
        _ => new GdbRegister(r.GdbName, r.GdbNumber, r.Bits / 8, $"uint{r.Bits}", SprFeature, "system"),
    }).ToList();

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
