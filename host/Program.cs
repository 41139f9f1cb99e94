using ActorStep.Host.Cli;

return await CommandLine.MainAsync(args);
