namespace ActorStep.Host.Access;

/// <summary>
/// Who may use a server and what a client may make it touch: the token its API requires (null: <c>--no-auth</c>), the
/// directories clients may name images in, and whether a client may have it start a QEMU.
/// </summary>
/// <param name="Token">the secret every call but health must carry; null: none (tests, a single-user machine)</param>
/// <param name="Images">where images named by clients are read from</param>
/// <param name="ClientsMayLaunchQemu">whether <c>CreateVm</c> may carry <c>qemu.launch</c>: QEMU's arguments read and write any file
/// the server's user can (-kernel, -drive, -chardev file), so only an operator who trusts every client allows it</param>
public sealed record ApiAccess(ApiToken? Token, ImageDirectories Images, bool ClientsMayLaunchQemu);
