namespace ActorStep.Host.Cli;

/// <summary><c>actorstep completion bash|zsh</c>: a shell script that completes through the parser's own <c>[suggest]</c> directive.</summary>
public static class CompletionCommand
{
    // The shell hands the line as typed; the program's name is cut off and the cursor position moved by as much, which is
    // what the [suggest:POSITION] directive wants (the line as the parser sees it).
    private const string Bash = """
        # actorstep completion for bash: eval "$(actorstep completion bash)"  (or save it in ~/.local/share/bash-completion/completions/actorstep)
        _actorstep_complete() {
            local line="${COMP_LINE#* }"
            local point=$(( COMP_POINT - ${#COMP_LINE} + ${#line} ))
            local IFS=$'\n'
            COMPREPLY=( $(compgen -W "$("${COMP_WORDS[0]}" "[suggest:${point}]" "${line}" 2>/dev/null)" -- "${COMP_WORDS[COMP_CWORD]}") )
        }
        complete -o default -F _actorstep_complete actorstep
        """;

    private const string Zsh = """
        # actorstep completion for zsh: eval "$(actorstep completion zsh)"
        autoload -U +X bashcompinit && bashcompinit

        """;

    public static System.CommandLine.Command Definition() => CommandLine.Define("completion",
        "Print a shell completion script: eval \"$(actorstep completion bash)\" (or zsh). It asks actorstep itself, so it knows " +
        "every command and option of this version.",
        Execute,
        new System.CommandLine.Argument<string>("SHELL") { Description = "bash or zsh" });

    private static Task<int> Execute(ArgReader args)
    {
        string shell = args.Argument("SHELL");
        Console.Out.WriteLine(shell switch
        {
            "bash" => Bash,
            "zsh" => Zsh + Bash,
            _ => throw new UsageException($"completion scripts exist for bash and zsh, not '{shell}'"),
        });
        return Task.FromResult(0);
    }
}
