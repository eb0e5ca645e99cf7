using System.CommandLine;
using MilterSecureList.Configuration;
using MilterSecureList.Directory;
using MilterSecureList.Directory.Gateway;

namespace MilterSecureList.Admin.Commands;

/// <summary>The open gateway tables, key directory (the shared <see cref="DirectoryServices"/> wiring) and [Gateway] options
/// for one <c>user</c>/<c>cert</c> verb.</summary>
internal sealed class GatewayAdminSession : IDisposable
{
    private readonly DirectoryServices _services;

    private GatewayAdminSession(DirectoryServices services, GatewayOptions options)
    {
        _services = services;
        Administration = services.CreateGatewayAdministration();
        Options = options;
    }

    public GatewayStore Store => _services.Gateway;

    public GatewayAdministration Administration { get; }

    public GatewayOptions Options { get; }

    public static GatewayAdminSession Open(AdminContext context, ParseResult parse)
    {
        AdminConfiguration configuration = context.LoadConfiguration(parse);
        GatewayOptions options = LoadOptions(configuration);
        DirectoryServices services = context.OpenDirectory(configuration);
        try
        {
            return new GatewayAdminSession(services, options);
        }
        catch
        {
            services.Dispose();
            throw;
        }
    }

    /// <summary>[Gateway] from the CLI's configuration file; the first problem is a one-line user error.</summary>
    public static GatewayOptions LoadOptions(AdminConfiguration configuration)
    {
        var problems = new List<string>();
        IniSection section = configuration.Ini.Section(GatewayOptions.SectionName);
        GatewayOptions options = GatewayOptions.Bind(section.Value, problems);
        problems.AddRange(options.Validate());
        section.ThrowFirst(problems);
        return options;
    }

    public void Dispose() => _services.Dispose();
}
