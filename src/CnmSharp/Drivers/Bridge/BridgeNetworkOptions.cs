using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace CnmSharp.Drivers.Bridge;

/// <summary>One network's settings, parsed and validated from a <see cref="NetworkCreateRequest"/> before anything is
/// touched.</summary>
internal sealed record BridgeNetworkOptions
{
    public const int MinMtu = 68;
    public const int MaxMtu = 65535;
    public const string DefaultContainerPrefix = "eth";
    public const string AuxDefaultGatewayIPv4 = "DefaultGatewayIPv4";
    public const string AuxDefaultGatewayIPv6 = "DefaultGatewayIPv6";

    public required string BridgeName { get; init; }
    public bool EnableIcc { get; init; } = true;
    public bool EnableMasquerade { get; init; } = true;
    public IPAddress? HostBindingIPv4 { get; init; }
    public bool InhibitIPv4 { get; init; }
    public bool DefaultBridge { get; init; }
    public int Mtu { get; init; }
    public string ContainerPrefix { get; init; } = DefaultContainerPrefix;
    public IPAddress? HostIPv4 { get; init; }
    public bool Internal { get; init; }
    public bool EnableIPv6 { get; init; }
    public required IPNetwork IPv4Subnet { get; init; }
    public CidrAddress? IPv4Gateway { get; init; }
    public IPNetwork? IPv6Subnet { get; init; }
    public CidrAddress? IPv6Gateway { get; init; }
    public IPAddress? DefaultGatewayIPv4 { get; init; }
    public IPAddress? DefaultGatewayIPv6 { get; init; }

    /// <summary>Keys the core may pass along with the user's options; accepted and otherwise ignored (the request
    /// carries their meaning).</summary>
    private static readonly System.Buffers.SearchValues<char> s_invalidNameChars = System.Buffers.SearchValues.Create("/: \t\n\r\v\f");

    private static readonly HashSet<string> s_passThrough = new(StringComparer.Ordinal) { NetLabels.EnableIPv6, NetLabels.Internal };

    public static string DefaultName(string networkId) => "br-" + (networkId.Length > 12 ? networkId[..12] : networkId);

    public static bool IsValidBridgeName(string? name) =>
        !string.IsNullOrEmpty(name)
        && Encoding.UTF8.GetByteCount(name) <= 15
        && name is not "." and not ".."
        && name.AsSpan().IndexOfAny(s_invalidNameChars) < 0;

    /// <summary>Parses a Go-style boolean (<c>strconv.ParseBool</c>: 1, t, true, 0, f, false in any common case).</summary>
    public static bool TryParseBool(string? text, out bool value)
    {
        switch (text?.Trim())
        {
            case "1" or "t" or "T" or "true" or "TRUE" or "True":
                value = true;
                return true;
            case "0" or "f" or "F" or "false" or "FALSE" or "False":
                value = false;
                return true;
            default:
                value = false;
                return false;
        }
    }

    /// <summary>Parses and validates a request; throws <see cref="CnmInvalidArgumentException"/> or
    /// <see cref="CnmConflictException"/> (more than one pool of a family).</summary>
    public static BridgeNetworkOptions Parse(NetworkCreateRequest request, BridgeDriverOptions driver)
    {
        ArgumentNullException.ThrowIfNull(request);
        var subject = $"network \"{request.NetworkName}\"";
        string? name = null;
        bool icc = true, masquerade = true, inhibit = false, defaultBridge = false;
        IPAddress? hostBinding = null, hostIPv4 = null;
        var mtu = driver.DefaultMtu;
        var prefix = DefaultContainerPrefix;

        foreach (var (key, value) in request.DriverOptions)
        {
            switch (key)
            {
                case BridgeOptionKeys.BridgeName:
                    if (!IsValidBridgeName(value))
                    {
                        throw Invalid(subject, $"bridge name \"{value}\" must be 1 to 15 bytes without '/', ':' or whitespace");
                    }

                    name = value;
                    break;
                case BridgeOptionKeys.EnableIcc:
                    icc = Bool(subject, key, value);
                    break;
                case BridgeOptionKeys.EnableIPMasquerade:
                    masquerade = Bool(subject, key, value);
                    break;
                case BridgeOptionKeys.InhibitIPv4:
                    inhibit = Bool(subject, key, value);
                    break;
                case BridgeOptionKeys.DefaultBridge:
                    defaultBridge = Bool(subject, key, value);
                    break;
                case BridgeOptionKeys.HostBindingIPv4:
                    hostBinding = IPv4(subject, key, value);
                    break;
                case BridgeOptionKeys.HostIPv4:
                    hostIPv4 = IPv4(subject, key, value);
                    if (hostIPv4.Equals(IPAddress.Any))
                    {
                        throw Invalid(subject, $"{key} must be a unicast IPv4 address, not 0.0.0.0");
                    }

                    break;
                case BridgeOptionKeys.Mtu:
                    if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out mtu) || mtu is < MinMtu or > MaxMtu)
                    {
                        throw Invalid(subject, $"{key} \"{value}\" must be an integer from {MinMtu} to {MaxMtu}");
                    }

                    break;
                case BridgeOptionKeys.ContainerInterfacePrefix:
                    if (string.IsNullOrEmpty(value) || value.Length > 12 || !value.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-'))
                    {
                        throw Invalid(subject, $"{key} \"{value}\" must be 1 to 12 characters of letters, digits, '_' or '-'");
                    }

                    prefix = value;
                    break;
                default:
                    if (s_passThrough.Contains(key))
                    {
                        _ = Bool(subject, key, value);
                        break;
                    }

                    throw Invalid(subject, $"unknown option \"{key}\"");
            }
        }

        if (request.IPv4Data.Count == 0)
        {
            throw Invalid(subject, "ipv4 pool is empty");
        }

        if (request.IPv4Data.Count > 1)
        {
            throw new CnmConflictException(CnmErrorCodes.DriverForbidden, subject, "bridge networks support one IPv4 pool");
        }

        if (request.IPv6Data.Count > 1)
        {
            throw new CnmConflictException(CnmErrorCodes.DriverForbidden, subject, "bridge networks support one IPv6 pool");
        }

        var v4 = request.IPv4Data[0];
        if (v4.Pool.BaseAddress.AddressFamily != AddressFamily.InterNetwork || v4.Pool.PrefixLength == 0)
        {
            throw Invalid(subject, "ipv4 pool is empty");
        }

        CheckGateway(subject, v4.Pool, v4.Gateway);
        var defaultGw4 = AuxGateway(subject, v4, AuxDefaultGatewayIPv4);
        IPNetwork? v6Subnet = null;
        CidrAddress? v6Gateway = null;
        IPAddress? defaultGw6 = null;
        if (request.IPv6Data.Count == 1)
        {
            var v6 = request.IPv6Data[0];
            if (v6.Pool.BaseAddress.AddressFamily != AddressFamily.InterNetworkV6 || v6.Pool.PrefixLength == 0)
            {
                throw Invalid(subject, "ipv6 pool is invalid");
            }

            CheckGateway(subject, v6.Pool, v6.Gateway);
            v6Subnet = v6.Pool;
            v6Gateway = v6.Gateway;
            defaultGw6 = AuxGateway(subject, v6, AuxDefaultGatewayIPv6);
        }

        name ??= defaultBridge ? driver.DefaultBridgeName : DefaultName(request.NetworkId);
        return new BridgeNetworkOptions
        {
            BridgeName = name,
            EnableIcc = icc,
            EnableMasquerade = masquerade,
            HostBindingIPv4 = hostBinding,
            InhibitIPv4 = inhibit,
            DefaultBridge = defaultBridge,
            Mtu = mtu,
            ContainerPrefix = prefix,
            HostIPv4 = hostIPv4,
            Internal = request.Internal,
            EnableIPv6 = request.EnableIPv6 && v6Subnet is not null,
            IPv4Subnet = v4.Pool,
            IPv4Gateway = v4.Gateway,
            IPv6Subnet = v6Subnet,
            IPv6Gateway = v6Gateway,
            DefaultGatewayIPv4 = defaultGw4,
            DefaultGatewayIPv6 = defaultGw6,
        };
    }

    private static void CheckGateway(string subject, IPNetwork pool, CidrAddress? gateway)
    {
        if (gateway is { } g && !pool.Contains(g.Address))
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidGateway, subject, $"gateway {g.Address} is not in subnet {pool}");
        }
    }

    private static IPAddress? AuxGateway(string subject, IpamData data, string key)
    {
        if (!data.AuxAddresses.TryGetValue(key, out var aux))
        {
            return null;
        }

        if (!data.Pool.Contains(aux.Address))
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidGateway, subject, $"{key} {aux.Address} is not in subnet {data.Pool}");
        }

        return aux.Address;
    }

    private static bool Bool(string subject, string key, string value) =>
        TryParseBool(value, out var flag) ? flag : throw Invalid(subject, $"{key} \"{value}\" is not a boolean");

    /// <summary>An IPv4 address option, parsed strictly (<see cref="IPAddressText"/>: no <c>1.2.3</c>, no leading zeros).</summary>
    private static IPAddress IPv4(string subject, string key, string value)
    {
        var address = IPAddressText.ParseStrict(value, $"{subject} option {key}");
        return address.AddressFamily == AddressFamily.InterNetwork
            ? address
            : throw Invalid(subject, $"{key} {address} is not an IPv4 address");
    }

    private static CnmInvalidArgumentException Invalid(string subject, string reason) =>
        new(CnmErrorCodes.InvalidOption, subject, reason);
}
