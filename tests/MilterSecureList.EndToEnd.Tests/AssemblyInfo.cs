using System.Runtime.Versioning;

// Real Postfix, unix sockets, signals and file modes of key files: Linux only (as the Testing fixtures).
[assembly: SupportedOSPlatform("linux")]

// One Postfix + daemon per test class; the classes run one after another so they do not fight over 2 cores.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
