namespace ActorStep.Tests.Support;

/// <summary>
/// A guest whose vcpu 1 arms its decrementer and cedes (PAPR H_CEDE, which also sets MSR[EE]), while vcpu 0 counts to 1000 in
/// r5 and then wakes it with H_PROD. Woken, vcpu 1 counts in r6 at <c>after</c>; the decrementer's handler (0x900) sets r20,
/// arms the decrementer far away and returns.
/// </summary>
public static class CedingGuest
{
    public const string Source = """
            .org 0x900
        decrementer:
            li 20, 1
            lis 21, 0x7fff
            mtdec 21
            rfid
            .org 0x1000
            .globl _start
        _start:
            cmpdi 3, 1
            beq cede
        count:
            addi 5, 5, 1
            cmpdi 5, 1000
            bne count
            li 3, 0x108
            li 4, 1
            sc 1
        idle:
            b idle
        cede:
            lis 4, 1
            mtdec 4
            li 3, 0xE0
            sc 1
        after:
            addi 6, 6, 1
            b after
        """;

    /// <summary>Instructions vcpu 1 executes from its entry up to and including its H_CEDE.</summary>
    public const int StepsToCede = 6;

    public const ulong DecrementerHandler = 0x900;
}
