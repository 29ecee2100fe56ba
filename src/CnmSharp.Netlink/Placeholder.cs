namespace CnmSharp.Netlink;
