namespace MilterSecureList.Daemon.Options;

/// <summary>A configuration problem; <see cref="Exception.Message"/> is the one line printed at start-up.</summary>
public sealed class ConfigurationException(string message) : Exception(message);
