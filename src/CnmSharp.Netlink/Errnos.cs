namespace CnmSharp.Netlink;

/// <summary>Linux errno values the netlink layer reports, and their symbolic names.</summary>
public static class Errnos
{
#pragma warning disable CS1591 // The constants are named after the errno they hold.
    public const int EPERM = 1;
    public const int ENOENT = 2;
    public const int ESRCH = 3;
    public const int EINTR = 4;
    public const int EIO = 5;
    public const int ENXIO = 6;
    public const int EBADF = 9;
    public const int EAGAIN = 11;
    public const int ENOMEM = 12;
    public const int EACCES = 13;
    public const int EFAULT = 14;
    public const int EBUSY = 16;
    public const int EEXIST = 17;
    public const int EXDEV = 18;
    public const int ENODEV = 19;
    public const int ENOTDIR = 20;
    public const int EINVAL = 22;
    public const int ENFILE = 23;
    public const int EMFILE = 24;
    public const int ENOSPC = 28;
    public const int ERANGE = 34;
    public const int ENAMETOOLONG = 36;
    public const int ENOSYS = 38;
    public const int ENOTEMPTY = 39;
    public const int ELOOP = 40;
    public const int ENOMSG = 42;
    public const int ENOLINK = 67;
    public const int EPROTO = 71;
    public const int EBADMSG = 74;
    public const int EOVERFLOW = 75;
    public const int ERESTART = 85;
    public const int EMSGSIZE = 90;
    public const int EPROTONOSUPPORT = 93;
    public const int EOPNOTSUPP = 95;
    public const int EAFNOSUPPORT = 97;
    public const int EADDRINUSE = 98;
    public const int EADDRNOTAVAIL = 99;
    public const int ENETDOWN = 100;
    public const int ENETUNREACH = 101;
    public const int ENOBUFS = 105;
    public const int ETIMEDOUT = 110;
    public const int EHOSTUNREACH = 113;
    public const int EALREADY = 114;
#pragma warning restore CS1591

    /// <summary>The symbolic name of an errno, e.g. <c>EEXIST</c>; <c>E&lt;n&gt;</c> for values not listed.</summary>
    /// <param name="errno">The positive errno value.</param>
    /// <returns>The name.</returns>
    public static string Name(int errno) => errno switch
    {
        EPERM => nameof(EPERM),
        ENOENT => nameof(ENOENT),
        ESRCH => nameof(ESRCH),
        EINTR => nameof(EINTR),
        EIO => nameof(EIO),
        ENXIO => nameof(ENXIO),
        EBADF => nameof(EBADF),
        EAGAIN => nameof(EAGAIN),
        ENOMEM => nameof(ENOMEM),
        EACCES => nameof(EACCES),
        EFAULT => nameof(EFAULT),
        EBUSY => nameof(EBUSY),
        EEXIST => nameof(EEXIST),
        EXDEV => nameof(EXDEV),
        ENODEV => nameof(ENODEV),
        ENOTDIR => nameof(ENOTDIR),
        EINVAL => nameof(EINVAL),
        ENFILE => nameof(ENFILE),
        EMFILE => nameof(EMFILE),
        ENOSPC => nameof(ENOSPC),
        ERANGE => nameof(ERANGE),
        ENAMETOOLONG => nameof(ENAMETOOLONG),
        ENOSYS => nameof(ENOSYS),
        ENOTEMPTY => nameof(ENOTEMPTY),
        ELOOP => nameof(ELOOP),
        ENOMSG => nameof(ENOMSG),
        ENOLINK => nameof(ENOLINK),
        EPROTO => nameof(EPROTO),
        EBADMSG => nameof(EBADMSG),
        EOVERFLOW => nameof(EOVERFLOW),
        ERESTART => nameof(ERESTART),
        EMSGSIZE => nameof(EMSGSIZE),
        EPROTONOSUPPORT => nameof(EPROTONOSUPPORT),
        EOPNOTSUPP => nameof(EOPNOTSUPP),
        EAFNOSUPPORT => nameof(EAFNOSUPPORT),
        EADDRINUSE => nameof(EADDRINUSE),
        EADDRNOTAVAIL => nameof(EADDRNOTAVAIL),
        ENETDOWN => nameof(ENETDOWN),
        ENETUNREACH => nameof(ENETUNREACH),
        ENOBUFS => nameof(ENOBUFS),
        ETIMEDOUT => nameof(ETIMEDOUT),
        EHOSTUNREACH => nameof(EHOSTUNREACH),
        EALREADY => nameof(EALREADY),
        _ => "E" + errno.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}
