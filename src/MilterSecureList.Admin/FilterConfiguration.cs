using MilterSecureList.Filter;

namespace MilterSecureList.Admin;

/// <summary>The list filter's [Policy] from the same milter.ini the daemon reads, bound the same way.</summary>
internal static class FilterConfiguration
{
    public static PolicyOptions Policy(AdminConfiguration configuration)
    {
        var problems = new List<string>();
        PolicyOptions policy = PolicyOptions.Bind(
            key => configuration.Configuration[$"{PolicyOptions.Section}:{key}"] is { Length: > 0 } v ? v.Trim() : null, problems);
        if (problems.Count > 0)
        {
            throw new UsageException($"{Path.GetFileName(configuration.Path)}: {problems[0]}");
        }

        return policy;
    }
}
