using System.Reflection;
using System.Runtime.CompilerServices;

namespace ActorStep.Machine.Cpu;

/// <summary>
/// The interpreter's hot code compiled ahead of a process's first guest instruction, on a thread of its own. Its methods are
/// AggressiveOptimization (SimulatedVcpu.HotPath, the handlers' Wrapper): no ReadyToRun code stands in for them, so each is
/// compiled fully optimised at its first call, which in a fresh process is the vcpu's thread meeting a new instruction: ~160
/// methods and ~0.08 s of the JIT's time spread over a boot's first second. Compiled here while the process reads the kernel and
/// builds the machine, the vcpu finds them ready. The dispatch table (SimulatedVcpu.Handlers) is built before ExecuteBatch is
/// compiled: the JIT folds a static readonly field into a constant only when its class is initialised, and otherwise tests the
/// initialisation at every word. (Whether a handler compiled before the table is built is named there by its code or by the
/// stub that jumps to it is the runtime's: a vcpu's constructor builds the table too, and either way a handler's address is the
/// one <c>GetFunctionPointer</c> gives, which the block compiler matches.)
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

    /// <summary>The machine's AggressiveOptimization methods (not generic ones: their instances are the JIT's at their first
    /// use): the handlers, then the dispatch table that names them, then the rest (ExecuteBatch reads the table).</summary>
    private static void Prepare() => Try(PrepareAll);

    private static void PrepareAll()
    {
        var methods = typeof(HotCode).Assembly.GetTypes()
            .Where(t => !t.ContainsGenericParameters)
            .SelectMany(t => t.GetMethods(BindingFlags.DeclaredOnly | BindingFlags.Static | BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic))
            .Where(m => (m.MethodImplementationFlags & MethodImplAttributes.AggressiveOptimization) != 0 && !m.ContainsGenericParameters
                && !m.IsAbstract)
            .ToLookup(m => m.DeclaringType is { Name: "Handlers", DeclaringType: var outer } && outer == typeof(SimulatedVcpu));
        foreach (var method in methods[true]) Compile(method);
        Try(SimulatedVcpu.BuildDispatchTable);
        foreach (var method in methods[false]) Compile(method);
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
