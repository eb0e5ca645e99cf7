using System.CommandLine;
using MilterSecureList.Configuration;
using MilterSecureList.Directory;
using MilterSecureList.Directory.Gateway;

namespace MilterSecureList.Admin.Commands;

/// <summary>The open gateway tables, key directory and [Gateway] options for one <c>user</c>/<c>cert</c> verb.</summary>
internal sealed class GatewayAdminSession : IDisposable
{
    private GatewayAdminSession(GatewayStore store, GatewayAdministration administration, GatewayOptions options)
    {
        Store = store;
        Administration = administration;
        Options = options;
    }

    public GatewayStore Store { get; }

    public GatewayAdministration Administration { get; }

    public GatewayOptions Options { get; }

    public static GatewayAdminSession Open(AdminContext context, ParseResult parse)
    {
        AdminConfiguration configuration = context.LoadConfiguration(parse);
        GatewayOptions options = LoadOptions(configuration);
        GatewayStore store = GatewayStore.Open(configuration.Directory, context.Time);
        return new GatewayAdminSession(store, new GatewayAdministration(store, new ListKeyStore(configuration.Keys), context.Time), options);
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

    public void Dispose() => Store.Dispose();
}
