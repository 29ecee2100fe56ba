namespace CnmSharp;

/// <summary>The kinds of failure a caller can switch on (libnetwork's error markers, regrouped).</summary>
public enum CnmErrorKind
{
    /// <summary>The object does not exist (libnetwork NotFound).</summary>
    NotFound,

    /// <summary>The request itself is malformed: bad name, subnet, option (libnetwork BadRequest).</summary>
    InvalidArgument,

    /// <summary>The request is well formed but the current state forbids it: duplicates, active endpoints, overlaps
    /// (libnetwork Forbidden).</summary>
    Conflict,

    /// <summary>A resource or service is exhausted or unreachable: no free pool or address, plugin down (libnetwork NoService).</summary>
    Unavailable,

    /// <summary>The driver or IPAM does not implement the operation (libnetwork NotImplemented).</summary>
    NotImplemented,

    /// <summary>Something that should not happen: kernel failure, corrupt state (libnetwork Internal).</summary>
    Internal,
}

/// <summary>
/// The base of every error CnmSharp raises for a failed operation. Switch on <see cref="Kind"/> (or catch a derived
/// type); <see cref="Code"/> names the precise rule (for example <c>ActiveEndpoints</c>) and <see cref="Subject"/> the
/// object that failed.
/// </summary>
public abstract class CnmException : Exception
{
    /// <summary>Creates an error.</summary>
    /// <param name="code">A short stable identifier of the rule that failed (see <see cref="CnmErrorCodes"/>).</param>
    /// <param name="subject">The object that failed, for example <c>network "web"</c>; may be empty.</param>
    /// <param name="reason">Why it failed, in words.</param>
    /// <param name="innerException">The cause, if any.</param>
    protected CnmException(string code, string subject, string reason, Exception? innerException = null)
        : base(Compose(subject, reason), innerException)
    {
        Code = code;
        Subject = subject;
        Reason = reason;
    }

    /// <summary>The kind of failure.</summary>
    public abstract CnmErrorKind Kind { get; }

    /// <summary>The rule that failed, a stable identifier such as <c>ActiveEndpoints</c>.</summary>
    public string Code { get; }

    /// <summary>The object that failed, for example <c>network "web"</c>.</summary>
    public string Subject { get; }

    /// <summary>Why it failed.</summary>
    public string Reason { get; }

    private static string Compose(string subject, string reason) =>
        string.IsNullOrEmpty(subject) ? reason : subject + ": " + reason;
}

/// <summary>The object does not exist.</summary>
public class CnmNotFoundException : CnmException
{
    /// <inheritdoc cref="CnmException(string, string, string, Exception?)"/>
    public CnmNotFoundException(string code, string subject, string reason, Exception? innerException = null)
        : base(code, subject, reason, innerException)
    {
    }

    /// <inheritdoc />
    public override CnmErrorKind Kind => CnmErrorKind.NotFound;
}

/// <summary>The request is malformed.</summary>
public class CnmInvalidArgumentException : CnmException
{
    /// <inheritdoc cref="CnmException(string, string, string, Exception?)"/>
    public CnmInvalidArgumentException(string code, string subject, string reason, Exception? innerException = null)
        : base(code, subject, reason, innerException)
    {
    }

    /// <inheritdoc />
    public override CnmErrorKind Kind => CnmErrorKind.InvalidArgument;
}

/// <summary>The current state forbids the request.</summary>
public class CnmConflictException : CnmException
{
    /// <inheritdoc cref="CnmException(string, string, string, Exception?)"/>
    public CnmConflictException(string code, string subject, string reason, Exception? innerException = null)
        : base(code, subject, reason, innerException)
    {
    }

    /// <inheritdoc />
    public override CnmErrorKind Kind => CnmErrorKind.Conflict;
}

/// <summary>A resource is exhausted or a service is unreachable.</summary>
public class CnmUnavailableException : CnmException
{
    /// <inheritdoc cref="CnmException(string, string, string, Exception?)"/>
    public CnmUnavailableException(string code, string subject, string reason, Exception? innerException = null)
        : base(code, subject, reason, innerException)
    {
    }

    /// <inheritdoc />
    public override CnmErrorKind Kind => CnmErrorKind.Unavailable;
}

/// <summary>The operation is not implemented by the driver or IPAM.</summary>
public class CnmNotImplementedException : CnmException
{
    /// <inheritdoc cref="CnmException(string, string, string, Exception?)"/>
    public CnmNotImplementedException(string code, string subject, string reason, Exception? innerException = null)
        : base(code, subject, reason, innerException)
    {
    }

    /// <inheritdoc />
    public override CnmErrorKind Kind => CnmErrorKind.NotImplemented;
}

/// <summary>An internal failure: the kernel refused, state is corrupt.</summary>
public class CnmInternalException : CnmException
{
    /// <inheritdoc cref="CnmException(string, string, string, Exception?)"/>
    public CnmInternalException(string code, string subject, string reason, Exception? innerException = null)
        : base(code, subject, reason, innerException)
    {
    }

    /// <inheritdoc />
    public override CnmErrorKind Kind => CnmErrorKind.Internal;
}
