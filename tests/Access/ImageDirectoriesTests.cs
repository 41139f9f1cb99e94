using ActorStep.Api.V1;
using ActorStep.Host.Access;
using ActorStep.Host.Server;
using Grpc.Core;
using Grpc.Net.Client;
using static ActorStep.Tests.Grpc.GrpcServerFixture;

namespace ActorStep.Tests.Access;

/// <summary>What a client may name as an image: files inside the served directories, never a path out of them.</summary>
public sealed class ImageDirectoriesTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("actorstep-images-").FullName;
    private readonly string _served;
    private readonly string _outside;

    public ImageDirectoriesTests()
    {
        _served = Directory.CreateDirectory(Path.Combine(_root, "served")).FullName;
        _outside = Directory.CreateDirectory(Path.Combine(_root, "private")).FullName;
        Directory.CreateDirectory(Path.Combine(_served, "sub"));
        File.WriteAllText(Path.Combine(_served, "sub", "guest.elf"), "inside");
        File.WriteAllText(Path.Combine(_outside, "secret"), "outside");
        File.CreateSymbolicLink(Path.Combine(_served, "link-out"), Path.Combine(_outside, "secret"));
        Directory.CreateSymbolicLink(Path.Combine(_served, "dir-out"), _outside);
        File.CreateSymbolicLink(Path.Combine(_served, "link-in"), Path.Combine(_served, "sub", "guest.elf"));
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private ImageDirectories Served => new([_served]);

    [Fact]
    public void A_relative_path_is_resolved_in_the_served_directory_and_an_absolute_one_inside_it_is_taken()
    {
        string real = Path.Combine(_served, "sub", "guest.elf");
        Assert.Equal(real, Served.Resolve("sub/guest.elf"));
        Assert.Equal(real, Served.Resolve(real));
        Assert.Equal(real, Served.Resolve("sub/../sub/./guest.elf"));
    }

    [Fact]
    public void A_relative_path_is_looked_up_in_each_served_directory_in_turn()
    {
        var both = new ImageDirectories([_outside, _served]);
        Assert.Equal(Path.Combine(_served, "sub", "guest.elf"), both.Resolve("sub/guest.elf"));
        Assert.Equal(Path.Combine(_outside, "secret"), both.Resolve("secret"));
    }

    [Fact]
    public void A_symbolic_link_that_stays_inside_is_followed()
    {
        Assert.Equal(Path.Combine(_served, "sub", "guest.elf"), Served.Resolve("link-in"));
    }

    [Theory]
    [InlineData("link-out")]
    [InlineData("dir-out/secret")]
    public void A_symbolic_link_out_of_the_served_directories_is_refused_without_naming_its_target(string path)
    {
        var e = Assert.Throws<ImagePathException>(() => Served.Resolve(path));
        Assert.True(e.Outside);
        Assert.Contains("symbolic link", e.Message);
        Assert.DoesNotContain(_outside, e.Message);
    }

    [Fact]
    public void A_path_outside_is_refused_alike_whether_or_not_it_exists()
    {
        var there = Assert.Throws<ImagePathException>(() => Served.Resolve(Path.Combine(_outside, "secret")));
        var missing = Assert.Throws<ImagePathException>(() => Served.Resolve(Path.Combine(_outside, "no-such-file")));
        var dotdot = Assert.Throws<ImagePathException>(() => Served.Resolve("../private/secret"));
        Assert.All([there, missing, dotdot], e => Assert.True(e.Outside));
        // The same words for a file that exists and one that does not: the answer tells nothing about what is outside.
        Assert.Equal(there.Message.Replace("secret", "X"), missing.Message.Replace("no-such-file", "X"));
        Assert.DoesNotContain(_outside, dotdot.Message);
    }

    [Fact]
    public void A_missing_file_inside_is_not_outside_and_a_served_directory_is_named_as_served()
    {
        var e = Assert.Throws<ImagePathException>(() => Served.Resolve("sub/none.elf"));
        Assert.False(e.Outside);
        Assert.Contains("no such file", e.Message);
        Assert.Contains(_served, e.Message);
        Assert.Throws<ArgumentException>(() => new ImageDirectories([Path.Combine(_root, "no-such-dir")]));
    }

    // Through the API: PERMISSION_DENIED outside, the VM created from inside; a QEMU only where the operator allows it.

    [Fact]
    public async Task CreateVm_takes_an_image_inside_the_served_directory_and_refuses_one_outside_or_linked_out()
    {
        string elf = Support.GuestAssembler.BuildElf("b .");
        File.Copy(elf, Path.Combine(_served, "spin.elf"));
        File.Copy(elf, Path.Combine(_outside, "spin.elf"));
        File.CreateSymbolicLink(Path.Combine(_served, "spin-out.elf"), Path.Combine(_outside, "spin.elf"));
        await using var server = await ServerHost.StartAsync(Options() with { ImageDirectories = [_served] });
        using var channel = GrpcChannel.ForAddress(server.Address);
        var vms = new Vms.VmsClient(channel);

        var vm = vms.CreateVm(new CreateVmRequest { ElfPath = "spin.elf", Vcpus = 1, MemorySize = 1 << 20 }, deadline: Deadline);
        Assert.Equal("spin.elf", vm.Image);
        foreach (var path in new[] { Path.Combine(_outside, "spin.elf"), "spin-out.elf", "../private/spin.elf", "/etc/shadow" })
        {
            var e = Fails(StatusCode.PermissionDenied, () => vms.CreateVm(new CreateVmRequest { ElfPath = path, Vcpus = 1, MemorySize = 1 << 20 }, deadline: Deadline));
            Assert.DoesNotContain(_outside, e.Status.Detail.Replace(path, "")); // the client's own words aside
        }
        var endpoint = Fails(StatusCode.PermissionDenied, () => vms.CreateVm(new CreateVmRequest
        {
            Qemu = new QemuSource { GdbEndpoint = $"unix:{Path.Combine(_outside, "gdb.sock")}" },
        }, deadline: Deadline));
        Assert.DoesNotContain(_outside, endpoint.Status.Detail.Replace(Path.Combine(_outside, "gdb.sock"), ""));
        var launch = Fails(StatusCode.PermissionDenied, () => vms.CreateVm(new CreateVmRequest
        {
            Qemu = new QemuSource { Launch = new QemuLaunch { Arguments = { "-M", "pseries", "-kernel", "/etc/shadow" } } },
        }, deadline: Deadline));
        Assert.Contains("--allow-qemu-launch", launch.Status.Detail);
    }

    [Fact]
    public async Task The_operators_own_image_is_trusted_wherever_it_is()
    {
        string elf = Path.Combine(_outside, "own.elf");
        File.Copy(Support.GuestAssembler.BuildElf("b ."), elf);
        await using var server = await ServerHost.StartAsync(Options() with { ImagePath = elf, Vcpus = 1, MemorySize = 1 << 20, ImageDirectories = [_served] });
        Assert.Equal("own.elf", server.InitialVm!.Image);
    }
}
