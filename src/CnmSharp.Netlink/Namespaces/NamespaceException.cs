using System.Runtime.InteropServices;
using CnmSharp.Netlink.Interop;

namespace CnmSharp.Netlink;

/// <summary>
/// A network-namespace operation failed in the kernel. Carries the operation, the <c>errno</c> and the path involved.
/// Callers can switch on the derived kinds <see cref="NamespaceAlreadyExistsException"/> and
/// <see cref="NamespaceNotFoundException"/>.
/// </summary>
public class NamespaceException : Exception
{
    /// <summary>Creates an exception with a message only.</summary>
    public NamespaceException()
    {
        Operation = string.Empty;
    }

    /// <summary>Creates an exception with a message only.</summary>
    /// <param name="message">The message.</param>
    public NamespaceException(string message)
        : base(message)
    {
        Operation = string.Empty;
    }

    /// <summary>Creates an exception with a message and an inner exception.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public NamespaceException(string message, Exception innerException)
        : base(message, innerException)
    {
        Operation = string.Empty;
    }

    /// <summary>Creates an exception for a failed system call.</summary>
    /// <param name="operation">What was being done, e.g. <c>mount</c>.</param>
    /// <param name="errorNumber">The <c>errno</c> the kernel returned.</param>
    /// <param name="path">The file involved, if any.</param>
    /// <param name="message">A message; when null one is built from the other values.</param>
    public NamespaceException(string operation, int errorNumber, string? path, string? message = null)
        : base(message ?? BuildMessage(operation, errorNumber, path))
    {
        Operation = operation ?? string.Empty;
        ErrorNumber = errorNumber;
        Path = path;
    }

    /// <summary>The failed operation (system call or step), e.g. <c>setns</c>.</summary>
    public string Operation { get; }

    /// <summary>The <c>errno</c> the kernel returned; 0 when the failure was not a system call.</summary>
    public int ErrorNumber { get; }

    /// <summary>The file the operation concerned (namespace file, run directory, sysctl file), if any.</summary>
    public string? Path { get; }

    private static string BuildMessage(string operation, int errorNumber, string? path)
    {
        var text = errorNumber == 0 ? "failed" : $"{Marshal.GetPInvokeErrorMessage(errorNumber)} (errno {errorNumber})";
        return path is null ? $"{operation}: {text}" : $"{operation} '{path}': {text}";
    }

    internal static NamespaceException FromErrno(string operation, int errorNumber, string? path) => errorNumber switch
    {
        NamespaceInterop.ENOENT => new NamespaceNotFoundException(operation, errorNumber, path),
        NamespaceInterop.EEXIST => new NamespaceAlreadyExistsException(operation, errorNumber, path),
        _ => new NamespaceException(operation, errorNumber, path),
    };

    internal static NamespaceException FromLastError(string operation, string? path) =>
        FromErrno(operation, Marshal.GetLastPInvokeError(), path);
}

/// <summary>A named namespace (or the file at its path) already exists.</summary>
public sealed class NamespaceAlreadyExistsException : NamespaceException
{
    /// <summary>Creates the exception.</summary>
    public NamespaceAlreadyExistsException()
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">The message.</param>
    public NamespaceAlreadyExistsException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public NamespaceAlreadyExistsException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception for a failed system call.</summary>
    /// <param name="operation">What was being done.</param>
    /// <param name="errorNumber">The <c>errno</c>.</param>
    /// <param name="path">The file involved.</param>
    /// <param name="message">A message, or null to build one.</param>
    public NamespaceAlreadyExistsException(string operation, int errorNumber, string? path, string? message = null)
        : base(operation, errorNumber, path, message)
    {
    }
}

/// <summary>A named namespace, namespace file, process or sysctl does not exist.</summary>
public sealed class NamespaceNotFoundException : NamespaceException
{
    /// <summary>Creates the exception.</summary>
    public NamespaceNotFoundException()
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">The message.</param>
    public NamespaceNotFoundException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public NamespaceNotFoundException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception for a failed system call.</summary>
    /// <param name="operation">What was being done.</param>
    /// <param name="errorNumber">The <c>errno</c>.</param>
    /// <param name="path">The file involved.</param>
    /// <param name="message">A message, or null to build one.</param>
    public NamespaceNotFoundException(string operation, int errorNumber, string? path, string? message = null)
        : base(operation, errorNumber, path, message)
    {
    }
}
