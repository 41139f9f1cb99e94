namespace ActorStep.Backends.Qemu;

/// <summary>Which of the guest's lifecycle events QMP reported.</summary>
public enum QemuLifecycleKind
{
    /// <summary>SHUTDOWN: a shutdown request (the guest's poweroff, its reset under -no-reboot, its panic, or the host's: quit, a signal).</summary>
    Shutdown,
    /// <summary>RESET: the machine was reset (the guest rebooted, or the host asked): QEMU runs on, the gdbstub says nothing.</summary>
    Reset,
    /// <summary>GUEST_PANICKED: the guest said it panicked (pseries ibm,os-term, pvpanic); QEMU's action follows.</summary>
    Panicked,
}

/// <summary>A lifecycle event of the guest, as QMP reported it: its kind, QEMU's reason (<c>guest-shutdown</c>, <c>guest-reset</c>,
/// <c>host-qmp-quit</c>, …; for a panic QEMU's action), and whether the guest asked for it.</summary>
public sealed record QemuLifecycleEvent(QemuLifecycleKind Kind, string? Reason, bool? Guest)
{
    /// <summary>SHUTDOWN, RESET and GUEST_PANICKED; null for any other event.</summary>
    public static QemuLifecycleEvent? From(QmpEvent e) => e.Name switch
    {
        "SHUTDOWN" => new(QemuLifecycleKind.Shutdown, e.Text("reason"), GuestFlag(e)),
        "RESET" => new(QemuLifecycleKind.Reset, e.Text("reason"), GuestFlag(e)),
        "GUEST_PANICKED" => new(QemuLifecycleKind.Panicked, e.Text("action"), true),
        _ => null,
    };

    private static bool? GuestFlag(QmpEvent e) => e.Text("guest") switch { "true" => true, "false" => false, _ => null };

    /// <summary>One line for a user: what happened to the guest, and QEMU's own name for it.</summary>
    public string Describe() => (Kind, Reason) switch
    {
        (QemuLifecycleKind.Shutdown, "guest-shutdown") => "the guest powered off (QMP SHUTDOWN, guest-shutdown)",
        (QemuLifecycleKind.Shutdown, "guest-reset") => "the guest reset itself, which QEMU's -no-reboot makes a shutdown (QMP SHUTDOWN, guest-reset)",
        (QemuLifecycleKind.Shutdown, "guest-panic") => "the guest panicked (QMP SHUTDOWN, guest-panic)",
        (QemuLifecycleKind.Shutdown, "host-qmp-quit") => "QEMU was told to quit (QMP SHUTDOWN, host-qmp-quit)",
        (QemuLifecycleKind.Shutdown, "host-signal") => "QEMU was sent a signal to end (QMP SHUTDOWN, host-signal)",
        (QemuLifecycleKind.Shutdown, var r) => $"QEMU shut the VM down (QMP SHUTDOWN, {r ?? "no reason given"})",
        (QemuLifecycleKind.Reset, var r) => $"the {(Guest == false ? "host" : "guest")} reset the machine (QMP RESET, {r ?? "no reason given"})",
        (QemuLifecycleKind.Panicked, var action) => $"the guest panicked (QMP GUEST_PANICKED, QEMU's action: {action ?? "?"})",
        _ => Kind.ToString(),
    };
}
