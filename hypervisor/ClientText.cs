namespace ActorStep.Hypervisor;

/// <summary>
/// How an error message quotes what a client sent (a VM id, a register name, a path): whole when short, else cut, so that the
/// message — a gRPC status trailer — stays small whatever the input (a trailer over the client's header limit turns the
/// status into UNAVAILABLE).
/// </summary>
public static class ClientText
{
    /// <summary>The most characters of one input a message quotes.</summary>
    public const int MaxQuoted = 100;

    /// <summary><c>'text'</c>; or, over <paramref name="max"/> characters, its beginning, an ellipsis and its length:
    /// <c>'aaa…' (65536 characters)</c>.</summary>
    public static string Quote(string? text, int max = MaxQuoted)
    {
        text ??= "";
        if (text.Length <= max) return $"'{text}'";
        int cut = char.IsHighSurrogate(text[max - 1]) ? max - 1 : max; // never half a character
        return $"'{text[..cut]}…' ({text.Length} characters)";
    }
}
