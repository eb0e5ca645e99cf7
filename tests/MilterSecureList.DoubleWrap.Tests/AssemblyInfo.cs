using System.Runtime.Versioning;

[assembly: SupportedOSPlatform("linux")]

// Each test starts a Postfix and a daemon: one at a time on the shared cores.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
