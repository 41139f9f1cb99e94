using System.Globalization;
using System.Text.RegularExpressions;

namespace ActorStep.Backends.Qemu;

/// <summary>
/// QEMU's register numbers for one CPU model, read from the target description it sends (target.xml and the features it
/// includes), numbered as gdb numbers them: in document order, a <c>regnum</c> attribute setting the number of its register
/// and those after it. The core registers are fixed (r0–r31 = 0–31, pc = 64, msr = 65, cr, lr, ctr, xer); SPRs come from
/// the dynamic feature <c>org.qemu.power.spr</c>, whose numbers depend on the CPU model and the QEMU version — looked up
/// here by name, never hard-coded.
/// </summary>
public sealed partial class QemuRegisterMap
{
    private readonly Dictionary<string, int> _numbers;

    public QemuRegisterMap(IReadOnlyDictionary<string, int> numbers) =>
        _numbers = new Dictionary<string, int>(numbers, StringComparer.OrdinalIgnoreCase);

    public int? Find(string name) => _numbers.TryGetValue(name, out int n) ? n : null;

    public int this[string name] => Find(name)
        ?? throw new InvalidOperationException($"QEMU's target description names no register '{name}' (CPU model without it?)");

    public IReadOnlyDictionary<string, int> All => _numbers;

    /// <summary>Parses the description; <paramref name="readAnnex"/> reads one annex (target.xml, then each included one).</summary>
    public static QemuRegisterMap Read(Func<string, string> readAnnex)
    {
        // Patterns, not an XML parser: QEMU's target.xml uses the xi: prefix without declaring it.
        var numbers = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        int next = 0;
        void Registers(string xml)
        {
            foreach (Match reg in RegElement().Matches(xml))
            {
                var regnum = RegnumAttribute().Match(reg.Value);
                if (regnum.Success) next = int.Parse(regnum.Groups[1].Value, CultureInfo.InvariantCulture);
                numbers.TryAdd(NameAttribute().Match(reg.Value).Groups[1].Value, next++);
            }
        }
        string target = readAnnex("target.xml");
        if (!target.Contains("power64-core.xml", StringComparison.Ordinal))
            throw new InvalidOperationException("QEMU's target description has no power64-core feature: not a 64-bit POWER QEMU (qemu-system-ppc64)");
        Registers(target);
        foreach (Match include in Include().Matches(target)) Registers(readAnnex(include.Groups[1].Value));
        return new QemuRegisterMap(numbers);
    }

    [GeneratedRegex(@"<reg\s[^>]*>")] private static partial Regex RegElement();
    [GeneratedRegex(@"\sregnum=""(\d+)""")] private static partial Regex RegnumAttribute();
    [GeneratedRegex(@"\sname=""([^""]+)""")] private static partial Regex NameAttribute();
    [GeneratedRegex(@"<xi:include\s+href=""([^""]+)""")] private static partial Regex Include();
}
