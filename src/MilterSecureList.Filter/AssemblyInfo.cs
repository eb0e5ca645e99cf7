using System.Runtime.Versioning;

// A Postfix milter: Unix only (unix sockets, file modes of key files).
[assembly: UnsupportedOSPlatform("windows")]

[assembly: System.Runtime.CompilerServices.InternalsVisibleTo("MilterSecureList.Filter.Tests")]
