using System.CommandLine;
using System.CommandLine.Invocation;
using System.CommandLine.Parsing;

namespace ActorStep.Host.Cli;

/// <summary>
/// The <c>actorstep</c> command on System.CommandLine: each subcommand declares its options (<c>Definition()</c> beside its
/// <c>ExecuteAsync</c>); the parser gives <c>--help</c> on every command, <c>--version</c>, errors that name the bad option
/// with the command's help, and completion (<c>actorstep completion bash</c>). Exit codes: 0, 1 bad input, 2 usage, 3 checkstop.
/// </summary>
public static class CommandLine
{
    public const int BadInput = 1, UsageError = 2;

    public static RootCommand Build()
    {
        var root = new RootCommand("ActorStep: a debug orchestrator for POWER (ppc64) virtual machines: single-steps guests a KVM-HV " +
                                   "style hypervisor cannot step, over gRPC and the GDB remote protocol.");
        root.Subcommands.Add(RunCommand.Definition());
        root.Subcommands.Add(ServeCommand.Definition());
        root.Subcommands.Add(GdbCommand.Definition());
        root.Subcommands.Add(CompletionCommand.Definition());
        return root;
    }

    public static async Task<int> MainAsync(string[] args)
    {
        var root = Build();
        var parse = root.Parse(args);
        // The server and the bridge handle Ctrl-C and SIGTERM themselves (a clean stop, then exit 0): the parser must not.
        var invocation = new InvocationConfiguration { ProcessTerminationTimeout = null, EnableDefaultExceptionHandler = false };
        if (parse.Action is ParseErrorAction)
        {
            // The errors (with typo corrections) and the command's help, all on stderr; a usage error is exit code 2.
            parse.Invoke(new InvocationConfiguration { Output = Console.Error, ProcessTerminationTimeout = null });
            return UsageError;
        }
        return await parse.InvokeAsync(invocation);
    }

    /// <summary>A subcommand whose body reads its options through an <see cref="ArgReader"/>; a <see cref="UsageException"/> it
    /// throws is reported with the command's help (exit code 2).</summary>
    public static Command Define(string name, string description, Func<ArgReader, Task<int>> execute, params Symbol[] symbols)
    {
        var command = new Command(name, description);
        foreach (var s in symbols)
        {
            if (s is Option o) command.Options.Add(o);
            else if (s is Argument a) command.Arguments.Add(a);
        }
        command.SetAction(async (parse, _) =>
        {
            try
            {
                return await execute(new ArgReader(parse));
            }
            catch (UsageException e)
            {
                Console.Error.WriteLine($"actorstep {name}: {e.Message}");
                Console.Error.WriteLine();
                Build().Parse([name, "--help"]).Invoke(new InvocationConfiguration { Output = Console.Error, ProcessTerminationTimeout = null });
                return UsageError;
            }
        });
        return command;
    }

    /// <summary><c>--name VALUE</c> (the last one counts if given twice).</summary>
    public static Option<string> Value(string name, string valueName, string description) =>
        new(name) { Description = description, HelpName = valueName, AllowMultipleArgumentsPerToken = false, Arity = ArgumentArity.ExactlyOne };

    /// <summary><c>--name VALUE</c>, repeatable.</summary>
    public static Option<string[]> Many(string name, string valueName, string description) =>
        new(name) { Description = description, HelpName = valueName, AllowMultipleArgumentsPerToken = false };

    /// <summary><c>--name</c>, no value.</summary>
    public static Option<bool> Flag(string name, string description) => new(name) { Description = description, Arity = ArgumentArity.Zero };
}

/// <summary>A command line the user got wrong: reported with the command's help, exit code 2.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>
/// A command's parsed options, read by name (<c>--image</c>) as the command bodies always have: values as strings, numbers
/// checked against their range here, so that each message names the option and what it wants.
/// </summary>
public sealed class ArgReader
{
    private readonly ParseResult _parse;

    public ArgReader(ParseResult parse)
    {
        _parse = parse;
        // What follows a bare "--" belongs to another program (serve --qemu -- QEMU-ARGS…); any other argument is a mistake.
        var tokens = parse.Tokens.ToList();
        int dashes = tokens.FindIndex(t => t.Type == TokenType.DoubleDash);
        Rest = dashes < 0 ? [] : tokens.Skip(dashes + 1).Select(t => t.Value).ToList();
        foreach (var rest in parse.CommandResult.Command.Arguments.Where(a => a.ValueType == typeof(string[])))
            if (parse.GetValue<string[]>(rest.Name) is { } values && values.Length > Rest.Count)
                throw new UsageException(values[0].StartsWith('-') ? $"unknown option '{values[0]}'" : $"unexpected argument '{values[0]}'");
    }

    /// <summary>The arguments after a bare <c>--</c> (empty when there is none).</summary>
    public IReadOnlyList<string> Rest { get; }

    public string? String(string name) => _parse.GetValue<string>(name);

    public IReadOnlyList<string> All(string name) => _parse.GetValue<string[]>(name) ?? [];

    public bool Flag(string name) => _parse.GetValue<bool>(name);

    /// <summary>A positional argument's value (declared on the command by that name).</summary>
    public string Argument(string name) => _parse.GetValue<string>(name) ?? "";

    public long? Long(string name, long min, long max)
    {
        string? s = String(name);
        if (s is null) return null;
        if (!ParseNumber(s, out ulong v) || (long)v < min || (long)v > max)
            throw new UsageException($"{name} must be a number in {min}..{max}, not '{s}'");
        return (long)v;
    }

    /// <summary>Decimal or 0x-prefixed hexadecimal.</summary>
    public static bool ParseNumber(string s, out ulong value)
    {
        s = s.Trim();
        if (s.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
            return ulong.TryParse(s.AsSpan(2), System.Globalization.NumberStyles.HexNumber, null, out value);
        return ulong.TryParse(s, out value);
    }
}
