namespace ActorStep.Protocol;

/// <summary>Marker for the protocol assembly: wire protocols (GDB RSP) and the POWER register layout served to gdb.</summary>
public static class ProtocolAssembly;
