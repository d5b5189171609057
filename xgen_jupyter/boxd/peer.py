"""Who is on the other end of the socket (SO_PEERCRED: the kernel says, the client cannot lie),
and whether that user could read a model file (the service must never run a file for someone
who could not read it themselves)."""

from __future__ import annotations

import errno
import os
import pwd
import shutil
import socket
import stat
import struct
import subprocess
from dataclasses import dataclass

from ..core.errors import ModelError

_UCRED = struct.Struct("3i")  # struct ucred {pid_t pid; uid_t uid; gid_t gid;}


@dataclass(frozen=True)
class Peer:
    pid: int
    uid: int
    gid: int
    user: str

    @property
    def is_root(self) -> bool:
        return self.uid == 0


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # a uid without a passwd entry (containers): still one distinct identity
        return f"uid{uid}"


def peer_of(sock: socket.socket) -> Peer:
    pid, uid, gid = _UCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size))
    return Peer(pid, uid, gid, user_name(uid))


def _groups(uid: int, gid: int) -> set[int]:
    try:
        return set(os.getgrouplist(pwd.getpwuid(uid).pw_name, gid))
    except KeyError:
        return {gid}


def _may(st: os.stat_result, uid: int, groups: set[int], want: int) -> bool:
    """Permission bits as the kernel applies them: the owner class, else group, else other."""
    if st.st_uid == uid:
        return st.st_mode & (want << 6) == want << 6
    if st.st_gid in groups:
        return st.st_mode & (want << 3) == want << 3
    return st.st_mode & want == want


def _has_acl(path: str) -> bool:
    try:
        os.getxattr(path, "system.posix_acl_access", follow_symlinks=False)
        return True
    except OSError as exc:
        return exc.errno not in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP)


def _bits_readable(path: str, uid: int, gid: int) -> bool:
    """Without root: walk the real path, every folder searchable (x) and the target readable (r)."""
    groups = _groups(uid, gid)
    real = os.path.realpath(path)
    parts = real.split("/")
    for i in range(1, len(parts)):
        folder = "/".join(parts[:i]) or "/"
        st = os.stat(folder)
        if not _may(st, uid, groups, 1):
            return False
    st = os.stat(real)
    want = 4 | (1 if stat.S_ISDIR(st.st_mode) else 0)
    # A file with an ACL may deny this user what the bits allow others: only root can ask the kernel.
    return _may(st, uid, groups, want) and not (_has_acl(real) and st.st_uid != uid)


def _kernel_readable(path: str, uid: int, gid: int) -> bool:
    """As root: ``test -r`` run with the user's uid, gid and groups; the kernel (ACLs included) answers."""
    test = shutil.which("test") or "/usr/bin/test"
    argv = [test, "-r", path, "-a", "-x", path] if os.path.isdir(path) else [test, "-r", path]
    if os.path.isdir(path) and os.path.isfile(os.path.join(path, "config.json")):  # a Hugging Face folder
        argv += ["-a", "-r", os.path.join(path, "config.json")]
    r = subprocess.run(argv, user=uid, group=gid, extra_groups=sorted(_groups(uid, gid)), env={},
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=10, check=False)
    return r.returncode == 0


def may_list(path: str, peer: Peer) -> bool:
    """Whether to show ``peer`` a model file in the catalog: the permission bits (cheap) let them read it."""
    try:
        return peer.is_root or _bits_readable(path, peer.uid, peer.gid)
    except OSError:
        return False


def check_readable(path: str, peer: Peer) -> None:
    """ModelError unless ``peer`` could read ``path`` themselves."""
    if peer.is_root:
        return
    try:
        ok = _kernel_readable(path, peer.uid, peer.gid) if os.geteuid() == 0 else _bits_readable(path, peer.uid,
                                                                                                  peer.gid)
    except (OSError, subprocess.SubprocessError):
        ok = False
    if not ok:
        raise ModelError(f"{peer.user} cannot read {path}",
                         "the box service only loads model files their requester may read: fix the file's "
                         "permissions (chmod/setfacl) or copy the model into your own folder")
