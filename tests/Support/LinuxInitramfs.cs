namespace ActorStep.Tests.Support;

/// <summary>
/// The initramfs the Linux tests boot, built at test time (<see cref="NewcArchive"/>): busybox as /bin/busybox, /init a
/// busybox shell script, the directories it needs and /dev/console (c 5 1) so the kernel can open the console before
/// devtmpfs exists. The default /init mounts proc and sys, prints <see cref="UpLine"/>, then one <c>ACTORSTEP-…:</c> line
/// per check (<c>uname -r</c>, <c>nproc</c>, the processor entries of /proc/cpuinfo, <c>$((6*7))</c>; values userspace computes
/// with FP — awk's doubles —, md5sum and sort) and powers off.
/// </summary>
public static class LinuxInitramfs
{
    public const string UpLine = "ACTORSTEP-INIT: userspace up";
    public const string PoweringOffLine = "ACTORSTEP-INIT: powering off";

    /// <summary>Lines are prefixed so a test matches them anchored (the kernel's printk can interleave with output).</summary>
    public const string DefaultInit = """
        #!/bin/busybox sh
        /bin/busybox --install -s
        mount -t proc proc /proc
        mount -t sysfs sysfs /sys
        echo "ACTORSTEP-INIT: userspace up"
        echo "ACTORSTEP-UNAME: $(uname -r)"
        echo "ACTORSTEP-NPROC: $(nproc)"
        echo "ACTORSTEP-CPUINFO: $(grep -c '^processor' /proc/cpuinfo)"
        echo "ACTORSTEP-ARITH: $((6*7))"
        echo "ACTORSTEP-AWK: $(awk 'BEGIN { s = 0; p = 1; for (i = 1; i <= 1000; i++) { s += 1 / i; p *= 1.01 } printf "%.12f %.6e", s, p }')"
        echo "ACTORSTEP-MD5: $(echo 'ActorStep computes this in userspace' | md5sum)"
        echo "ACTORSTEP-SORT: $(printf '%s\n' 42 7 1000 -3 19 | sort -n | tr '\n' ' ')"
        echo "ACTORSTEP-INIT: powering off"
        poweroff -f

        """;

    public static byte[] Build(string busyboxPath, string init = DefaultInit)
    {
        var cpio = new NewcArchive();
        foreach (string d in (string[])["bin", "sbin", "usr", "usr/bin", "usr/sbin", "dev", "proc", "sys", "tmp", "root", "etc"])
            cpio.Directory(d);
        cpio.CharDevice("dev/console", 5, 1);
        cpio.File("bin/busybox", File.ReadAllBytes(busyboxPath), mode: 0x1ED /* 0755 */);
        cpio.Symlink("bin/sh", "busybox");
        cpio.File("init", init.ReplaceLineEndings("\n"), mode: 0x1ED);
        return cpio.ToArray();
    }
}
