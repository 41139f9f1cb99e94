using ActorStep.Host.Cli;
using ActorStep.Host.Server;

// serve handles Ctrl-C and SIGTERM as a clean stop from here on, before the rest of the program loads (ServerHost takes them).
if (args.Length > 0 && args[0] == "serve") ShutdownSignals.InstallEarly();
// A command that runs a simulated machine compiles the interpreter's hot code while it reads its guest and builds the machine.
if (args.Length > 0 && args[0] is "run" or "serve") ActorStep.Machine.SimulatedMachine.PrepareHotCode();
return await CommandLine.MainAsync(args);
