namespace CnmSharp.Netlink;

/// <summary>Names a link either by index or by name (the kernel resolves names with IFLA_IFNAME).</summary>
public readonly record struct LinkReference
{
    private LinkReference(int index, string? name)
    {
        Index = index;
        Name = name;
    }

    /// <summary>The index, or 0 when the link is named.</summary>
    public int Index { get; }

    /// <summary>The name, or null when the link is given by index.</summary>
    public string? Name { get; }

    /// <summary>A reference by index.</summary>
    /// <param name="index">The interface index (positive).</param>
    /// <returns>The reference.</returns>
    public static LinkReference FromIndex(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(index);
        return new(index, null);
    }

    /// <summary>A reference by name.</summary>
    /// <param name="name">The interface name.</param>
    /// <returns>The reference.</returns>
    public static LinkReference FromName(string name)
    {
        LinkNames.Validate(name);
        return new(0, name);
    }

    /// <summary>A reference by index.</summary>
    /// <param name="index">The interface index.</param>
    public static implicit operator LinkReference(int index) => FromIndex(index);

    /// <summary>A reference by name.</summary>
    /// <param name="name">The interface name.</param>
    public static implicit operator LinkReference(string name) => FromName(name);

    /// <summary>Same as the implicit conversion from <see cref="int"/>.</summary>
    /// <param name="index">The interface index.</param>
    /// <returns>The reference.</returns>
    public static LinkReference FromInt32(int index) => FromIndex(index);

    /// <summary>Same as the implicit conversion from <see cref="string"/>.</summary>
    /// <param name="name">The interface name.</param>
    /// <returns>The reference.</returns>
    public static LinkReference FromString(string name) => FromName(name);

    /// <inheritdoc />
    public override string ToString() => Name ?? Index.ToString(System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary>Client-side checks of interface names, so bad names fail before anything is sent.</summary>
public static class LinkNames
{
    /// <summary>The longest name the kernel accepts, in UTF-8 bytes (IFNAMSIZ - 1).</summary>
    public const int MaxLength = 15;

    private static readonly System.Buffers.SearchValues<char> s_invalidNameChars = System.Buffers.SearchValues.Create("/: \t\n\r\v\f");

    /// <summary>Throws <see cref="ArgumentException"/> unless the kernel would accept <paramref name="name"/>.</summary>
    /// <param name="name">The name.</param>
    /// <param name="paramName">The argument name for the exception.</param>
    public static void Validate(string? name, [System.Runtime.CompilerServices.CallerArgumentExpression(nameof(name))] string? paramName = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(name, paramName);
        var bytes = System.Text.Encoding.UTF8.GetByteCount(name);
        if (bytes > MaxLength)
        {
            throw new ArgumentException(
                $"Interface name '{name}' is {bytes} bytes long; Linux allows at most {MaxLength} (IFNAMSIZ - 1).", paramName);
        }

        if (name is "." or ".." || name.AsSpan().IndexOfAny(s_invalidNameChars) >= 0)
        {
            throw new ArgumentException($"Interface name '{name}' is not valid: no '/', ':' or whitespace, and not '.' or '..'.", paramName);
        }
    }
}
