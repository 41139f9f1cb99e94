using ActorStep.Machine;
using ActorStep.Tests.Support;
using ActorStep.Hypervisor;

namespace ActorStep.Tests.Machine;

public class SmokeTests
{
    [Fact]
    public void Addi_loop_counts_to_ten()
    {
        var m = new TestMachine("""
            li 4, 0
            li 5, 10
            mtctr 5
        loop:
            addi 4, 4, 1
            bdnz loop
        done:
            b done
        """);
        m.RunTo("done");
        Assert.Equal(10UL, m.State.Gpr[4]);
    }
}
