"""Who may connect (the administrator's allow-list) and whether a user could read a model file:
the permission-bit check a non-root service uses must agree with the kernel's own answer."""

from __future__ import annotations

import os
import pwd

import pytest

from xgen_jupyter.boxd.peer import Peer, _bits_readable, _kernel_readable, check_readable
from xgen_jupyter.core.errors import ModelError

from .box_harness import as_user, world_dir


def test_allow_list_refuses_other_local_users(unix_users, box_factory):
    box = box_factory(extra=["--allow-user", "alice"])
    r = as_user("alice", box.socket, "call", "hello", {})
    assert r["ok"] and r["result"]["user"] == "alice"
    r = as_user("bob", box.socket, "call", "hello", {})
    assert not r["ok"] and "bob may not use the box service" in r["message"], r
    assert box.alive()


def test_a_socket_planted_by_another_user_is_not_trusted(unix_users, box_root):
    """In a folder everyone may write, bob puts a listening socket where the service's would be."""
    import socket

    from xgen_jupyter.boxd.client import find_socket

    fake = box_root / "shared" / "box.sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(fake))
    srv.listen(8)
    try:
        bob = pwd.getpwnam("bob")
        os.chown(fake, bob.pw_uid, bob.pw_gid)
        os.chmod(fake, 0o666)
        r = as_user("alice", fake, "call", "hello", {})
        assert not r["ok"] and f"belongs to uid {bob.pw_uid}, not to root or the service" in r["message"], r
        assert find_socket(box_root / "shared") is None  # the extension runs the core in-process instead
        srv.settimeout(0.5)
        with pytest.raises(TimeoutError):
            srv.accept()  # alice never connected: nothing reached bob's socket
    finally:
        srv.close()


@pytest.mark.parametrize("owner", ["alice", "bob", "root"])
def test_permission_bits_agree_with_the_kernel(unix_users, owner):
    folder = world_dir("xgen-svc-perm-")
    alice, bob = pwd.getpwnam("alice"), pwd.getpwnam("bob")
    who = pwd.getpwnam(owner)
    try:
        checked = 0
        for dmode in (0o755, 0o750, 0o700, 0o711):
            sub = folder / f"d{dmode:o}"
            sub.mkdir()
            os.chown(sub, who.pw_uid, who.pw_gid)
            os.chmod(sub, dmode)
            for fmode in (0o644, 0o640, 0o600, 0o604, 0o400, 0o000):
                f = sub / f"m{fmode:o}.gguf"
                f.write_bytes(b"GGUF")
                os.chown(f, who.pw_uid, who.pw_gid)
                os.chmod(f, fmode)
                for user in (alice, bob):
                    kernel = _kernel_readable(str(f), user.pw_uid, user.pw_gid)
                    assert _bits_readable(str(f), user.pw_uid, user.pw_gid) == kernel, (oct(dmode), oct(fmode),
                                                                                          user.pw_name)
                    checked += 1
                    peer = Peer(1, user.pw_uid, user.pw_gid, user.pw_name)
                    if kernel:
                        check_readable(str(f), peer)
                    else:
                        with pytest.raises(ModelError, match=f"{user.pw_name} cannot read"):
                            check_readable(str(f), peer)
        assert checked == 48
    finally:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
