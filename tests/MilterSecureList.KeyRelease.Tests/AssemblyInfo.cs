// The key-server tests start Kestrel on loopback ports and openssl; one class at a time on the shared 2 cores.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
