using System.Runtime.InteropServices;

namespace CnmSharp.Netlink;

/// <summary>
/// A netlink request failed: the kernel answered with an error (or a system call on the netlink socket failed).
/// Carries the errno, its symbolic name and the kernel's extended-ack message when it gave one.
/// </summary>
public class NetlinkException : IOException
{
    /// <summary>Creates an exception for a kernel or system-call error.</summary>
    /// <param name="errno">The positive errno value.</param>
    /// <param name="extendedMessage">The kernel's extended-ack message, if any.</param>
    /// <param name="operation">What was being done, for the message text.</param>
    public NetlinkException(int errno, string? extendedMessage = null, string? operation = null)
        : base(FormatMessage(errno, extendedMessage, operation))
    {
        Errno = errno;
        ErrorName = Errnos.Name(errno);
        ExtendedMessage = extendedMessage;
        HResult = errno;
    }

    /// <summary>Creates an exception with a message of its own.</summary>
    /// <param name="errno">The positive errno value.</param>
    /// <param name="message">The message text.</param>
    /// <param name="innerException">The cause, if any.</param>
    protected NetlinkException(int errno, string message, Exception? innerException)
        : base(message, innerException)
    {
        Errno = errno;
        ErrorName = Errnos.Name(errno);
    }

    /// <summary>Creates an exception with no errno (EIO).</summary>
    public NetlinkException() : this(Errnos.EIO)
    {
    }

    /// <summary>Creates an exception with a message (errno EIO).</summary>
    /// <param name="message">The message text.</param>
    public NetlinkException(string message) : this(Errnos.EIO, message, (Exception?)null)
    {
    }

    /// <summary>Creates an exception with a message and a cause (errno EIO).</summary>
    /// <param name="message">The message text.</param>
    /// <param name="innerException">The cause.</param>
    public NetlinkException(string message, Exception innerException) : this(Errnos.EIO, message, innerException)
    {
    }

    /// <summary>The positive errno value, e.g. 17 for EEXIST.</summary>
    public int Errno { get; }

    /// <summary>The symbolic errno name, e.g. <c>EEXIST</c>, or <c>E&lt;n&gt;</c> when unknown.</summary>
    public string ErrorName { get; }

    /// <summary>The kernel's extended-ack message (NLMSGERR_ATTR_MSG), e.g. "Unknown device type", or null.</summary>
    public string? ExtendedMessage { get; }

    /// <summary>True when the object was not found (ENODEV, ENOENT, ESRCH).</summary>
    public bool IsNotFound => Errno is Errnos.ENODEV or Errnos.ENOENT or Errnos.ESRCH;

    /// <summary>True when the object already exists (EEXIST).</summary>
    public bool IsAlreadyExists => Errno == Errnos.EEXIST;

    /// <summary>True when the kernel does not support what was asked (EOPNOTSUPP), e.g. a missing device kind.</summary>
    public bool IsNotSupported => Errno == Errnos.EOPNOTSUPP;

    private static string FormatMessage(int errno, string? extendedMessage, string? operation)
    {
        var text = $"{Errnos.Name(errno)} ({errno}): {Marshal.GetPInvokeErrorMessage(errno)}";
        if (!string.IsNullOrEmpty(extendedMessage))
        {
            text += $": {extendedMessage}";
        }

        return operation is null ? text : $"{operation} failed: {text}";
    }
}

/// <summary>
/// The bytes received from the kernel (or handed to the reader) are not well-formed netlink: a length field points
/// outside the buffer, an attribute is too short for its type, or a reply is truncated.
/// </summary>
public sealed class NetlinkProtocolException : NetlinkException
{
    /// <summary>Creates the exception (errno EPROTO).</summary>
    /// <param name="message">What was malformed.</param>
    public NetlinkProtocolException(string message) : base(Errnos.EPROTO, "Malformed netlink message: " + message, (Exception?)null)
    {
    }

    /// <summary>Creates the exception (errno EPROTO).</summary>
    public NetlinkProtocolException() : this("unspecified")
    {
    }

    /// <summary>Creates the exception (errno EPROTO).</summary>
    /// <param name="message">What was malformed.</param>
    /// <param name="innerException">The cause.</param>
    public NetlinkProtocolException(string message, Exception innerException)
        : base(Errnos.EPROTO, "Malformed netlink message: " + message, innerException)
    {
    }
}
