using System.Diagnostics.CodeAnalysis;

namespace CnmSharp.Netlink.Internal;

/// <summary>Throw helpers kept out of line so hot paths stay small.</summary>
internal static class ThrowHelper
{
    [DoesNotReturn]
    public static void ThrowProtocol(string message) => throw new NetlinkProtocolException(message);

    [DoesNotReturn]
    public static T ThrowProtocol<T>(string message) => throw new NetlinkProtocolException(message);

    [DoesNotReturn]
    public static void ThrowBufferTooSmall() =>
        throw new InvalidOperationException("The netlink request does not fit in the fixed buffer it is being written to.");

    [DoesNotReturn]
    public static void ThrowMessageTooLarge() =>
        throw new InvalidOperationException("A netlink message or attribute exceeds 65535 bytes.");

    [DoesNotReturn]
    public static void ThrowErrno(int errno, string operation) => throw new NetlinkException(errno, null, operation);
}
