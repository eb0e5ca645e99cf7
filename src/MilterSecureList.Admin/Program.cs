using MilterSecureList.Admin;

return AdminCli.Run(args, Console.Out, Console.Error);
