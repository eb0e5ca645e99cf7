namespace MilterSecureList.Admin.Commands;

/// <summary>Message input and output for the verbs that take <c>--in FILE|-</c> and <c>--out FILE|-</c>.</summary>
internal static class MessageFiles
{
    public static Stream OpenInput(string path)
    {
        if (path == "-")
        {
            // Read standard input whole: the readers need a seekable, complete message.
            var copy = new MemoryStream();
            Console.OpenStandardInput().CopyTo(copy);
            copy.Position = 0;
            return copy;
        }

        if (!File.Exists(path))
        {
            throw new UsageException($"{path}: no such file");
        }

        return File.OpenRead(path);
    }

    /// <summary>Writes the complete buffer; a file is written beside the target and renamed into place.</summary>
    public static void WriteOutput(string path, MemoryStream content)
    {
        content.Position = 0;
        if (path == "-")
        {
            using Stream stdout = Console.OpenStandardOutput();
            content.CopyTo(stdout);
            return;
        }

        string temp = path + ".tmp-" + Environment.ProcessId;
        using (FileStream file = File.Create(temp))
        {
            content.CopyTo(file);
        }

        File.Move(temp, path, overwrite: true);
    }
}
