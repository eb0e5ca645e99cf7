// Fixtures drive Postfix, unix sockets and signals: Linux only.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
