"""The bubblewrap command line of a task worker: a pure builder plus host discovery.

Why bubblewrap (NOTES, "Running untrusted task code"): it is installed here, works as
root, and gives the worker its own pid, network, IPC and UTS namespaces — so a task cannot
reach services on the host's loopback, and every process it starts (even after
``setsid()``) stays inside one pid namespace that dies as a whole with its init.

We run bwrap in privileged mode (as root, no ``--unshare-user``) and let the worker
itself drop to uid 65534 (:mod:`peeros.compute.sandbox`); bwrap keeps only CAP_SETUID,
CAP_SETGID and CAP_SETPCAP (to empty the bounding set) for that. The filesystem holds
only what Python needs, read-only: ``/usr`` (with ``/lib``, ``/bin``... as symlinks when
the host has them so, as on Debian 12), the interpreter's ``sys.base_prefix``, the venv
(``sys.prefix``) and the directory holding the ``peeros`` package; a fresh ``/proc``, a
minimal ``/dev`` and a size-limited ``/tmp``.

Gotcha verified here: bwrap creates the parents of bind targets with mode 0700, which
uid 65534 cannot traverse, so every ancestor is created first with ``--perms 0755 --dir``.
Paths to hide (the peer's data directory) get an empty tmpfs when a bind would expose them.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import peeros
from peeros.compute.worker_protocol import SandboxConfig

#: Host paths that are symlinks into /usr on merged-/usr systems; bound read-only otherwise.
SYSTEM_DIRS = ("/lib", "/lib64", "/bin", "/sbin")
#: Small /etc files Python may read; skipped when missing.
ETC_FILES = ("/etc/ld.so.cache", "/etc/localtime")
#: The sandbox's own size-limited tmpfs (nothing of the host's /tmp is visible).
TMP = "/tmp"  # noqa: S108
#: Always bound read-only.
USR = Path("/usr")
#: The worker program. It runs by path, not with ``-m peeros.compute.sandbox``: importing
#: the ``peeros`` package loads the whole client stack (~300 ms), and would do so as root.
SANDBOX_SCRIPT = Path(__file__).resolve().with_name("sandbox.py")
#: The environment of a worker: nothing of the peer's own environment leaks in.
WORKER_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": TMP, "LANG": "C.UTF-8"}


def worker_command(config: SandboxConfig, sandboxed: bool) -> list[str]:
    """The argv of a worker: bare ``python -I sandbox.py ...`` or wrapped in bwrap."""
    c = config
    args = ["--uid", c.uid, "--gid", c.gid, "--nproc", c.nproc, "--nofile", c.nofile]
    args += ["--fsize", c.fsize_bytes, "--max-as", c.max_memory_bytes]
    inner = [c.python, "-I", str(SANDBOX_SCRIPT), *map(str, args)]
    if not sandboxed:
        return inner
    return build_command(
        bwrap=shutil.which("bwrap") or "bwrap",
        inner=[*inner, "--pidns"],
        binds=default_binds(c.python),
        links=host_links(),
        hidden=c.hidden_paths,
        tmp_bytes=4 * c.fsize_bytes,
    )


def host_links(dirs: Iterable[str] = SYSTEM_DIRS) -> dict[str, str | None]:
    """For each system dir: its symlink target when it is a symlink, else ``None``."""
    return {d: os.readlink(d) if os.path.islink(d) else None for d in dirs}


def default_binds(python: str) -> list[Path]:
    """The host directories a worker needs: interpreter prefixes and the peeros package."""
    package_root = Path(peeros.__file__).resolve().parent.parent
    candidates = [Path(sys.base_prefix), Path(sys.prefix), package_root]
    exe = Path(python)
    candidates.append(exe.parent)
    candidates.append(exe.resolve().parent)
    return minimal_roots(candidates)


def minimal_roots(paths: Iterable[Path]) -> list[Path]:
    """Absolute, deduplicated paths with those inside another one (or inside /usr) removed."""
    unique = sorted({Path(os.path.abspath(p)) for p in paths}, key=lambda p: (len(p.parts), p))
    roots: list[Path] = [USR]
    for p in unique:
        if not any(p == r or p.is_relative_to(r) for r in roots):
            roots.append(p)
    return roots[1:]


def ancestors(paths: Iterable[Path]) -> list[Path]:
    """Every proper ancestor (except ``/``) of the given paths, parents before children."""
    found: set[Path] = set()
    for p in paths:
        found.update(a for a in p.parents if a != Path("/"))
    return sorted(found, key=lambda p: (len(p.parts), str(p)))


def hidden_mounts(hidden: Iterable[Path], binds: Sequence[Path]) -> list[Path]:
    """The hidden paths a bind would expose (they get an empty tmpfs).

    A hidden path that *contains* a needed bind cannot be hidden without breaking the
    worker: that is a configuration error.
    """
    result: list[Path] = []
    for hidden_path in hidden:
        h = Path(os.path.abspath(hidden_path))
        for b in [USR, *binds]:
            if b.is_relative_to(h):
                raise ValueError(f"hidden path {h} contains {b}, which task workers need")
            for host_b in {b, b.resolve()}:  # a symlinked bind exposes its target's tree
                for host_h in {h, h.resolve()}:
                    if host_h.is_relative_to(host_b):
                        inside = b / host_h.relative_to(host_b)
                        if inside not in result:
                            result.append(inside)
    return result


def build_command(
    *,
    bwrap: str,
    inner: Sequence[str],
    binds: Sequence[Path],
    links: Mapping[str, str | None],
    hidden: Iterable[Path] = (),
    tmp_bytes: int = 256 << 20,
) -> list[str]:
    """The full ``bwrap ... <inner command>`` argv (pure: all host facts are arguments)."""
    cmd = [bwrap, "--ro-bind", str(USR), str(USR)]
    # The private /tmp comes first: bwrap mounts in order, so an interpreter or venv that
    # lives under the host's /tmp (a checkout in /tmp, as CI may use) is bound on top of it
    # instead of being hidden by it.
    cmd += ["--size", str(tmp_bytes), "--perms", "1777", "--tmpfs", TMP]
    for name, target in links.items():
        if target is None:
            cmd += ["--ro-bind-try", name, name]
        else:
            cmd += ["--symlink", target, name]
    for a in ancestors(binds):
        cmd += ["--perms", "0755", "--dir", str(a)]
    for b in binds:
        cmd += ["--ro-bind", str(b), str(b)]
    for f in ETC_FILES:
        cmd += ["--ro-bind-try", f, f]
    for h in hidden_mounts(hidden, binds):
        cmd += ["--size", "4096", "--perms", "0000", "--tmpfs", str(h)]
    cmd += ["--proc", "/proc", "--dev", "/dev"]
    cmd += ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts"]
    cmd += ["--unshare-cgroup-try", "--die-with-parent", "--new-session", "--chdir", TMP]
    cmd += ["--cap-drop", "ALL"]
    for cap in ("CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP"):  # for the worker to drop root
        cmd += ["--cap-add", cap]
    return [*cmd, *inner]


def unusable_reason(config: SandboxConfig) -> str | None:
    """Why workers cannot be sandboxed here, before trying (None: try it)."""
    if config.use_bwrap is False:
        return "disabled by configuration"
    if os.geteuid() != 0:
        return "not running as root"
    if shutil.which("bwrap") is None:
        return "bwrap is not installed"
    return None
