using System.Diagnostics.CodeAnalysis;

[assembly: SuppressMessage("Naming", "CA1716:Identifiers should not match keywords",
    Scope = "namespace", Target = "~N:CnmSharp.Ipam.Default",
    Justification = "The namespace names the IPAM driver 'default', as libnetwork and Docker users know it.")]
