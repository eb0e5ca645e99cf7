using System.Runtime.Versioning;

// The CLI manages a Unix milter's key files (Unix file modes).
[assembly: UnsupportedOSPlatform("windows")]
