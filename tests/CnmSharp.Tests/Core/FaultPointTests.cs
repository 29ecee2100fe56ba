using CnmSharp.Diagnostics;
using CnmSharp.Drivers;
using CnmSharp.Firewall;
using Moq;

namespace CnmSharp.Tests.Core;

/// <summary>The fault injector (docs/reliability.md, "Fault points"): per controller, reaching the controller's own
/// points and its drivers (through <see cref="DriverContext.Services"/>), absent by default, and a point that throws
/// fails the operation with the same rollback as any error.</summary>
public sealed class FaultPointTests
{
    [Test]
    public async Task Two_controllers_in_one_process_each_reach_only_their_own_injector()
    {
        await using var a = new ControllerFixture();
        await using var b = new ControllerFixture();
        var reachedA = new List<string>();
        var reachedB = new List<string>();
        var contexts = new List<DriverContext>();
        a.AddDriver(new ContextCapture("capture", contexts));
        b.AddDriver(new ContextCapture("capture", contexts));
        var controllerA = await a.NewBuilder().UseFaultPoints(new FaultPoints(reachedA.Add)).BuildAsync();
        var controllerB = await b.NewBuilder().UseFaultPoints(new FaultPoints(reachedB.Add)).BuildAsync();
        try
        {
            // Each start made its default networks (through its own injector): only what follows counts.
            reachedA.Clear();
            reachedB.Clear();
            await controllerA.CreateNetworkAsync("n", ControllerFixture.DriverName);

            Assert.Multiple(() =>
            {
                Assert.That(reachedA, Is.EqualTo(new[] { FaultPoint.NetworkCreateIntentRecorded, FaultPoint.NetworkCreatePoolsReserved, FaultPoint.NetworkCreateDriverCreated, FaultPoint.NetworkCreateCommitted }));
                Assert.That(reachedB, Is.Empty);
                Assert.That(contexts.Select(c => FaultPoints.From(c.Services)).Distinct().Count(), Is.EqualTo(2), "each controller's driver gets its own injector");
            });
        }
        finally
        {
            await controllerA.DisposeAsync();
            await controllerB.DisposeAsync();
        }
    }

    [Test]
    public async Task A_controller_without_an_injector_gives_its_drivers_none()
    {
        await using var f = new ControllerFixture();
        var contexts = new List<DriverContext>();
        f.AddDriver(new ContextCapture("capture", contexts));
        await using var controller = await f.NewBuilder().BuildAsync();

        Assert.That(FaultPoints.From(contexts.Single().Services), Is.Null);
    }

    [Test]
    public async Task A_point_that_throws_fails_the_network_creation_and_rolls_it_back()
    {
        await using var f = new ControllerFixture();
        var armed = false;
        var faults = new FaultPoints(name =>
        {
            if (armed && name == FaultPoint.NetworkCreateDriverCreated)
            {
                throw new CnmInternalException(CnmErrorCodes.KernelError, "test", "injected");
            }
        });
        await using var controller = await f.NewBuilder().UseFaultPoints(faults).BuildAsync();
        var before = controller.Networks.Count;
        armed = true;

        await Assert.ThrowsAsync<CnmInternalException>(async () => await controller.CreateNetworkAsync("n", ControllerFixture.DriverName));

        Assert.Multiple(async () =>
        {
            Assert.That(controller.Networks, Has.Count.EqualTo(before));
            f.Driver.Verify(d => d.DeleteNetworkAsync(It.IsAny<string>(), It.IsAny<CancellationToken>()), Times.Once, "the driver's network is deleted again");
            Assert.That(await f.Store.ListAsync("cnm/v1/intent/"), Is.Empty);
        });
    }

    [Test]
    public async Task A_controller_with_an_injector_still_checks_its_firewall_backends_rules()
    {
        // The fault points wrap the backend (FaultingFirewallBackend): its optional diagnostics must go through.
        await using var f = new ControllerFixture();
        var finding = new InvariantFinding { Kind = InvariantKinds.LeakedFirewallRule, Subject = "rule fk", Detail = "planted" };
        var backend = new Mock<IFirewallBackend>();
        backend.Setup(b => b.Name).Returns("fake");
        var diagnostics = backend.As<IFirewallDiagnostics>();
        diagnostics.Setup(d => d.CheckAsync(It.IsAny<bool>(), It.IsAny<CancellationToken>())).ReturnsAsync([finding]);
        var factory = new Mock<IFirewallBackendFactory>();
        factory.Setup(x => x.Create(It.IsAny<string?>())).Returns(backend.Object);
        await using var controller = await f.NewBuilder().UseFirewall(factory.Object).UseFaultPoints(new FaultPoints(_ => { })).BuildAsync();

        var report = await controller.CheckAsync(new CheckOptions { Repair = true });

        Assert.Multiple(() =>
        {
            Assert.That(report.Findings, Does.Contain(finding));
            diagnostics.Verify(d => d.CheckAsync(true, It.IsAny<CancellationToken>()), Times.Once, "the repair flag is forwarded");
        });
    }

    [Test]
    public void The_faulting_wrapper_is_a_firewall_diagnostics_only_when_its_backend_is_one()
    {
        var faults = new FaultPoints(_ => { });
        var plain = new Mock<IFirewallBackend>();
        var checking = new Mock<IFirewallBackend>();
        checking.As<IFirewallDiagnostics>();

        Assert.Multiple(() =>
        {
            Assert.That(FaultingFirewallBackend.Wrap(plain.Object, faults), Is.Not.InstanceOf<IFirewallDiagnostics>());
            Assert.That(FaultingFirewallBackend.Wrap(checking.Object, faults), Is.InstanceOf<IFirewallDiagnostics>());
        });
    }

    /// <summary>A driver factory that records the context it is given (the driver itself is a loose mock).</summary>
    private sealed class ContextCapture(string name, List<DriverContext> contexts) : INetworkDriverFactory
    {
        public string Name => name;

        public ValueTask<INetworkDriver> CreateAsync(DriverContext context, CancellationToken cancellationToken = default)
        {
            contexts.Add(context);
            var driver = new Mock<INetworkDriver>();
            driver.Setup(d => d.Capability).Returns(DriverCapability.LocalScope);
            return ValueTask.FromResult(driver.Object);
        }
    }
}
