using Moq;

namespace CnmSharp.Netlink.Tests;

/// <summary>The CNM core mocks <see cref="IRtnetlinkClient"/>; make sure the contract is mock-friendly.</summary>
public class MockingTests
{
    [Test]
    public async Task The_client_interface_can_be_mocked_strictly()
    {
        var mock = new Mock<IRtnetlinkClient>(MockBehavior.Strict);
        var sequence = new MockSequence();
        mock.InSequence(sequence).Setup(c => c.CreateLinkAsync(It.Is<VethLinkSpec>(s => s.PeerName == "eth0"), It.IsAny<CancellationToken>()))
            .Returns(ValueTask.CompletedTask);
        mock.InSequence(sequence).Setup(c => c.GetLinkAsync("vh0", It.IsAny<CancellationToken>()))
            .ReturnsAsync(new LinkInfo { Index = 5, Name = "vh0", Kind = "veth" });
        mock.InSequence(sequence).Setup(c => c.SetLinkUpAsync(5, It.IsAny<CancellationToken>()))
            .Returns(ValueTask.CompletedTask);

        IRtnetlinkClient client = mock.Object;
        await client.CreateLinkAsync(new VethLinkSpec("vh0", "eth0"));
        var link = await client.GetLinkAsync("vh0");
        await client.SetLinkUpAsync(link!.Index);
        mock.VerifyAll();
    }

    [Test]
    public async Task Errors_can_be_simulated()
    {
        var mock = new Mock<IRtnetlinkClient>(MockBehavior.Strict);
        mock.Setup(c => c.DeleteLinkAsync(It.IsAny<int>(), It.IsAny<CancellationToken>()))
            .ThrowsAsync(new NetlinkException(Errnos.ENODEV, null, "delete link"));
        var e = await Assert.ThrowsAsync<NetlinkException>(async () => await mock.Object.DeleteLinkAsync(3));
        Assert.That(e!.ErrorName, Is.EqualTo("ENODEV"));
    }
}
