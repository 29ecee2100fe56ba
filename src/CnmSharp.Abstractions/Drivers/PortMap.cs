using System.Buffers;
using System.Net;
using System.Text;
using System.Text.Json;

namespace CnmSharp.Drivers;

/// <summary>
/// The text of the <see cref="NetLabels.PortMap"/> entry of a driver's operational data
/// (<see cref="INetworkDriver.GetEndpointOperationalInfoAsync"/>), as libnetwork's <c>EndpointOperInfo</c> carries
/// <c>netlabel.PortMap</c>: the port bindings as the driver programmed them, with the host port it actually gave
/// (a requested host port 0 replaced by the ephemeral port chosen). A JSON array of
/// <c>{"protocol":6,"containerPort":80,"hostIP":"0.0.0.0","hostPort":32768,"hostPortEnd":0}</c>.
/// The core reads it after <see cref="IExternalConnectivityDriver.ProgramExternalConnectivityAsync"/> and reports
/// those bindings in <c>Endpoint.PortBindings</c>.
/// </summary>
public static class PortMap
{
    /// <summary>Formats port bindings as the <see cref="NetLabels.PortMap"/> value.</summary>
    /// <param name="bindings">The bindings.</param>
    /// <returns>The JSON text.</returns>
    public static string Format(IEnumerable<PortBinding> bindings)
    {
        ArgumentNullException.ThrowIfNull(bindings);
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartArray();
            foreach (var binding in bindings)
            {
                ArgumentNullException.ThrowIfNull(binding);
                writer.WriteStartObject();
                writer.WriteNumber("protocol", (int)binding.Protocol);
                writer.WriteNumber("containerPort", binding.ContainerPort);
                writer.WriteString("hostIP", (binding.HostIP ?? IPAddress.Any).ToString());
                writer.WriteNumber("hostPort", binding.HostPort);
                writer.WriteNumber("hostPortEnd", binding.HostPortEnd);
                writer.WriteEndObject();
            }

            writer.WriteEndArray();
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>Parses a <see cref="NetLabels.PortMap"/> value.</summary>
    /// <param name="text">The JSON text.</param>
    /// <param name="bindings">The bindings, or null when the text is not a valid port map.</param>
    /// <returns>True when it parsed.</returns>
    public static bool TryParse(string? text, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out IReadOnlyList<PortBinding>? bindings)
    {
        bindings = null;
        if (string.IsNullOrEmpty(text))
        {
            return false;
        }

        try
        {
            using var document = JsonDocument.Parse(text);
            if (document.RootElement.ValueKind != JsonValueKind.Array)
            {
                return false;
            }

            var result = new List<PortBinding>();
            foreach (var item in document.RootElement.EnumerateArray())
            {
                if (item.ValueKind != JsonValueKind.Object
                    || !TryGetPort(item, "protocol", required: true, out var protocol) || !Enum.IsDefined((TransportProtocol)protocol) || protocol > byte.MaxValue
                    || !TryGetPort(item, "containerPort", required: true, out var containerPort)
                    || !TryGetPort(item, "hostPort", required: false, out var hostPort)
                    || !TryGetPort(item, "hostPortEnd", required: false, out var hostPortEnd)
                    || !item.TryGetProperty("hostIP", out var hostIPElement) || hostIPElement.ValueKind != JsonValueKind.String
                    || !IPAddressText.TryParseStrict(hostIPElement.GetString(), out var hostIP))
                {
                    return false;
                }

                result.Add(new PortBinding((TransportProtocol)protocol, (ushort)containerPort, hostIP, (ushort)hostPort, (ushort)hostPortEnd));
            }

            bindings = result;
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static bool TryGetPort(JsonElement item, string name, bool required, out int value)
    {
        value = 0;
        if (!item.TryGetProperty(name, out var element))
        {
            return !required;
        }

        return element.ValueKind == JsonValueKind.Number && element.TryGetInt32(out value) && value is >= 0 and <= ushort.MaxValue;
    }
}
