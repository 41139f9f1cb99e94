using System.Text;
using ActorStep.Tests.Support;

namespace ActorStep.Tests.Linux;

public sealed class NewcArchiveTests
{
    [Fact]
    public void EntriesAreNewcHeadersWithNamesAndDataPaddedToFourBytesEndedByTheTrailer()
    {
        byte[] cpio = new NewcArchive().Directory("dev").CharDevice("/dev/console", 5, 1).File("init", "#!x\n", 0x1ED).ToArray();
        string s = Encoding.ASCII.GetString(cpio);

        // dev: ino 1, mode 040755, nlink 2, namesize 4 ("dev\0"); 110 + 4 = 114 → padded to 116.
        Assert.Equal("070701" + "00000001" + "000041ED" + "00000000" + "00000000" + "00000002" + "00000000" + "00000000"
            + "00000000" + "00000000" + "00000000" + "00000000" + "00000004" + "00000000" + "dev\0\0\0", s[..116]);
        // dev/console: mode 020600, rdev 5:1.
        Assert.Equal("070701" + "00000002" + "00002180" + "00000000" + "00000000" + "00000001" + "00000000" + "00000000"
            + "00000000" + "00000000" + "00000005" + "00000001" + "0000000C" + "00000000" + "dev/console\0", s[116..(116 + 122)]);
        int init = 116 + 124;   // 110 + 12 = 122 → 124
        Assert.Equal("070701" + "00000003" + "000081ED", s[init..(init + 22)]);
        Assert.Equal("00000004", s[(init + 54)..(init + 62)]);   // filesize
        Assert.Equal("init\0\0#!x\n", s[(init + 110)..(init + 120)]);   // 110 + 5 → 116 (name padded), then the data
        Assert.EndsWith("TRAILER!!!\0\0\0\0", s);
        Assert.Equal(0, cpio.Length % 4);
    }

    [Fact]
    public void TheSameEntriesGiveTheSameBytesAndANameCannotRepeat()
    {
        byte[] Build() => new NewcArchive().Directory("bin").File("bin/a", [1, 2, 3]).Symlink("bin/sh", "a").ToArray();
        Assert.Equal(Build(), Build());
        Assert.Throws<ArgumentException>(() => new NewcArchive().Directory("bin").Directory("/bin/"));
        Assert.Throws<ArgumentException>(() => new NewcArchive().File("../etc/passwd", "x"));
    }
}
