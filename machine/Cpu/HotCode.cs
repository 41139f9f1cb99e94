using System.Reflection;
using System.Runtime.CompilerServices;

namespace ActorStep.Machine.Cpu;

/// <summary>
/// The interpreter's hot code compiled ahead of a process's first guest instruction, on a thread of its own. Its methods are
/// AggressiveOptimization (SimulatedVcpu.HotPath, the handlers' Wrapper): no ReadyToRun code stands in for them, so each is
/// compiled fully optimised at its first call, which in a fresh process is the vcpu's thread meeting a new instruction: ~160
/// methods and ~0.08 s of the JIT's time spread over a boot's first second. Compiled here while the process reads the kernel and
/// builds the machine, the vcpu finds them ready. The dispatch table is built first (SimulatedVcpu.BuildDispatchTable), as
/// ExecuteBatch's compile needs it.
/// </summary>
internal static class HotCode
{
    private static int _started;

    /// <summary>Starts the compiles once a process (later calls return at once); they run while the caller goes on.</summary>
    public static void PrepareInBackground()
    {
        if (Interlocked.Exchange(ref _started, 1) != 0) return;
        new Thread(Prepare) { IsBackground = true, Name = "hot code" }.Start();
    }

    /// <summary>The dispatch table, then the machine's AggressiveOptimization methods (not generic ones: their instances are the
    /// JIT's at their first use).</summary>
    private static void Prepare() => Try(PrepareAll);

    private static void PrepareAll()
    {
        Try(SimulatedVcpu.BuildDispatchTable);
        var methods = typeof(HotCode).Assembly.GetTypes()
            .Where(t => !t.ContainsGenericParameters)
            .SelectMany(t => t.GetMethods(BindingFlags.DeclaredOnly | BindingFlags.Static | BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic))
            .Where(m => (m.MethodImplementationFlags & MethodImplAttributes.AggressiveOptimization) != 0 && !m.ContainsGenericParameters
                && !m.IsAbstract);
        foreach (var method in methods) Compile(method);
    }

    private static void Compile(MethodInfo method) => Try(() => RuntimeHelpers.PrepareMethod(method.MethodHandle));

    private static void Try(Action prepare)
    {
        try
        {
            prepare();
        }
        catch (Exception)
        {
            // Whatever stops one compile here (a type's initializer that throws, say) happens again at the method's first
            // call, where it is the caller's to report: this thread only moves compiles earlier, and must not end the process.
        }
    }
}
