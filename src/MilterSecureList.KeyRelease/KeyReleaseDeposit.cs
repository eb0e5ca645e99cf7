using MilterSecureList.Cms.KeyRelease;

namespace MilterSecureList.KeyRelease;

/// <summary>Builds the deposit request from what the sealer made (docs/key-release.md §4.1).</summary>
public static class KeyReleaseDeposit
{
    public static DepositRequest From(KeyReleaseSeal seal)
    {
        ArgumentNullException.ThrowIfNull(seal);
        return new DepositRequest
        {
            MessageId = seal.Entry.MessageId,
            KeyId = seal.Entry.KeyId,
            Policy = seal.Entry.Policy.Encode(),
            Binding = seal.Entry.Binding,
            KeyLength = seal.KeyLength,
            KeyRecipientInfo = seal.KeyRecipientInfo,
            ListKeyId = seal.ListKeyId,
        };
    }
}
