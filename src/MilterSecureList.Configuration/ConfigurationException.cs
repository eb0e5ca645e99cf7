namespace MilterSecureList.Configuration;

/// <summary>
/// A configuration problem. <see cref="Exception.Message"/> is the one line printed at start-up:
/// <c>FILE:LINE: [Section] Key: problem</c>.
/// </summary>
public sealed class ConfigurationException(string message) : Exception(message);
