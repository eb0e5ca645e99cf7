using System.Runtime.Versioning;

// A Postfix milter: Unix only. Key-file permission checks rely on Unix file modes.
[assembly: UnsupportedOSPlatform("windows")]
