using ActorStep.Host.Cli;
using ActorStep.Host.Server;

// serve handles Ctrl-C and SIGTERM as a clean stop from here on, before the rest of the program loads (ServerHost takes them).
if (args.Length > 0 && args[0] == "serve") ShutdownSignals.InstallEarly();
return await CommandLine.MainAsync(args);
