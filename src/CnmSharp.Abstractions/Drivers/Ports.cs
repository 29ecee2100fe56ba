using System.Net;

namespace CnmSharp.Drivers;

/// <summary>A transport protocol of a port (values as IANA numbers them, as Docker's wire format carries them).</summary>
public enum TransportProtocol : byte
{
    /// <summary>TCP.</summary>
    Tcp = 6,

    /// <summary>UDP.</summary>
    Udp = 17,

    /// <summary>SCTP.</summary>
    Sctp = 132,
}

/// <summary>A port an endpoint exposes.</summary>
/// <param name="Protocol">The protocol.</param>
/// <param name="Port">The port number.</param>
public readonly record struct TransportPort(TransportProtocol Protocol, ushort Port);

/// <summary>A published port: traffic to <see cref="HostIP"/>:<see cref="HostPort"/> goes to the container's port.</summary>
/// <param name="Protocol">The protocol.</param>
/// <param name="ContainerPort">The port inside the container.</param>
/// <param name="HostIP">The host address to listen on; <see cref="IPAddress.Any"/> for all.</param>
/// <param name="HostPort">The host port; 0 asks for an ephemeral one.</param>
/// <param name="HostPortEnd">The end of a host port range (inclusive), or 0 for a single port.</param>
public sealed record PortBinding(TransportProtocol Protocol, ushort ContainerPort, IPAddress HostIP, ushort HostPort, ushort HostPortEnd = 0)
{
    /// <summary>The container address the binding forwards to; set by the driver when it programs the binding.</summary>
    public IPAddress? ContainerIP { get; init; }
}
