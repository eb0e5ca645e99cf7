namespace MilterSecureList.Cms;

/// <summary>The RecipientInfo alternatives (RFC 5652 §6.2).</summary>
public enum RecipientInfoKind
{
    /// <summary>KeyTransRecipientInfo, SEQUENCE.</summary>
    KeyTransport,
    /// <summary>KeyAgreeRecipientInfo, [1].</summary>
    KeyAgreement,
    /// <summary>KEKRecipientInfo, [2].</summary>
    Kek,
    /// <summary>PasswordRecipientInfo, [3].</summary>
    Password,
    /// <summary>OtherRecipientInfo, [4].</summary>
    Other,
}
