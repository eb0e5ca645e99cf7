using MilterSecureList.Configuration;
using System.Net;
using MilterSecureList.Daemon.Notices;
using MilterSecureList.Directory;
using MilterSecureList.Filter;

namespace MilterSecureList.Daemon.Options;

/// <summary>[Directory]: where lists and members live (the Directory layer validates the values).</summary>
public sealed class DirectorySection : OptionsSection
{
    public override string SectionName => DirectoryOptions.SectionName;

    public DirectoryOptions Options { get; private set; } = new();

    public override void Load(IniSection section)
    {
        var problems = new List<string>();
        DirectoryOptions options = DirectoryOptions.Bind(
            section.Value, problems);
        problems.AddRange(options.Validate());
        section.ThrowFirst(problems);
        Options = options;
    }
}

/// <summary>[Keys]: the directory of list private keys (0700, files 0600).</summary>
public sealed class KeysSection : OptionsSection
{
    public override string SectionName => KeysOptions.SectionName;

    public KeysOptions Options { get; private set; } = new();

    public override void Load(IniSection section)
    {
        KeysOptions options = KeysOptions.Bind(section.Value);
        section.ThrowFirst(options.Validate());
        if (options.PassphraseFile is string passphrase)
        {
            // Checked now like every other path: a missing or readable passphrase file would otherwise
            // surface only when the first encrypted key is read, as a tempfail of a post.
            try
            {
                ListKeyStore.CheckPassphraseFile(passphrase);
            }
            catch (DirectoryException e)
            {
                throw section.Error("PassphraseFile", e.Message);
            }
        }

        Options = options;
    }
}

/// <summary>[Policy]: the list filter's defaults (bound by the Filter layer, as the CLI does).</summary>
public sealed class PolicySection : OptionsSection
{
    public override string SectionName => PolicyOptions.Section;

    public PolicyOptions Options { get; private set; } = new();

    public override void Load(IniSection section)
    {
        var problems = new List<string>();
        PolicyOptions options = PolicyOptions.Bind(section.Value, problems);
        section.ThrowFirst(problems);
        Options = options;
    }
}

/// <summary>[Notices]: owner notices about skipped members.</summary>
public sealed class NoticesSection : OptionsSection
{
    public override string SectionName => NoticeOptions.Section;

    public NoticeOptions Options { get; private set; } = new();

    public override void Load(IniSection section)
    {
        var problems = new List<string>();
        NoticeOptions options = NoticeOptions.Bind(section.Value, problems);
        section.ThrowFirst(problems);
        Options = options;
    }
}

/// <summary>[Metrics]: an optional Prometheus endpoint, on loopback only.</summary>
public sealed class MetricsSection : OptionsSection
{
    public override string SectionName => "Metrics";

    /// <summary>Null: no endpoint (the default).</summary>
    public IPEndPoint? Listen { get; private set; }

    public override void Load(IniSection section)
    {
        string raw = section.GetString("Listen", "");
        if (raw.Length == 0)
        {
            Listen = null;
            return;
        }

        if (!HostPort.TryParse(raw, out string host, out int port) || !IPAddress.TryParse(host, out IPAddress? address))
        {
            throw section.Error("Listen", $"'{raw}' is not ADDRESS:PORT such as 127.0.0.1:9465");
        }

        if (!IPAddress.IsLoopback(address))
        {
            // The counters name lists; they are for the local Prometheus agent, not the network.
            throw section.Error("Listen", $"'{raw}' is not a loopback address (use 127.0.0.1 or [::1])");
        }

        Listen = new IPEndPoint(address, port);
    }
}
