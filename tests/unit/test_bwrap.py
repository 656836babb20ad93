"""The bubblewrap command builder is pure: host facts in, argv out."""

from __future__ import annotations

from pathlib import Path

import pytest

from peeros.compute.bwrap import ancestors, build_command, hidden_mounts, minimal_roots

BINDS = [Path("/work/main/src"), Path("/work/main/.venv"), Path("/root/.pyenv/versions/3.11")]
LINKS: dict[str, str | None] = {"/lib": "usr/lib", "/lib64": None}
INNER = ["/work/main/.venv/bin/python", "-I", "sandbox.py", "--pidns"]


def command(**kw: object) -> list[str]:
    args: dict[str, object] = {"bwrap": "bwrap", "inner": INNER, "binds": BINDS, "links": LINKS}
    return build_command(**(args | kw))  # type: ignore[arg-type]


def pairs(cmd: list[str], option: str) -> list[str]:
    """The argument following each occurrence of ``option``."""
    return [cmd[i + 1] for i, a in enumerate(cmd) if a == option]


def test_minimal_roots_drop_nested_and_usr_paths() -> None:
    paths = [Path("/a/b"), Path("/a"), Path("/usr/lib/python3"), Path("/a/b/c"), Path("/d")]
    assert minimal_roots(paths) == [Path("/a"), Path("/d")]


def test_ancestors_parents_first_without_root() -> None:
    assert ancestors([Path("/work/main/src"), Path("/work/x")]) == [
        Path("/work"),
        Path("/work/main"),
    ]


def test_every_ancestor_is_a_0755_dir_created_before_the_binds() -> None:
    cmd = command()
    dirs = pairs(cmd, "--dir")
    assert dirs == ["/root", "/work", "/root/.pyenv", "/work/main", "/root/.pyenv/versions"]
    for d in dirs:
        i = cmd.index(d)
        assert cmd[i - 3 : i] == ["--perms", "0755", "--dir"]
    first_bind = cmd.index("/work/main/src")
    assert all(cmd.index(d) < first_bind for d in dirs)
    assert pairs(cmd, "--ro-bind") == ["/usr", *map(str, BINDS)]


def test_system_dirs_are_symlinks_when_the_host_has_symlinks() -> None:
    cmd = command()
    assert cmd[cmd.index("--symlink") : cmd.index("--symlink") + 3] == [
        "--symlink",
        "usr/lib",
        "/lib",
    ]
    assert "/lib64" in pairs(cmd, "--ro-bind-try")


def test_namespaces_and_the_inner_command_come_last() -> None:
    cmd = command()
    for flag in ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--die-with-parent"]:
        assert flag in cmd
    assert "--unshare-user" not in cmd
    assert cmd[-len(INNER) :] == INNER
    assert pairs(cmd, "--cap-add") == ["CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP"]


def test_hidden_paths_under_a_bind_get_an_empty_tmpfs() -> None:
    data = Path("/work/main/.venv/peer-data")
    elsewhere = Path("/srv/peer-data")  # not visible in the sandbox anyway
    assert hidden_mounts([data, elsewhere], BINDS) == [data]
    cmd = command(hidden=[data, elsewhere])
    assert str(data) in pairs(cmd, "--tmpfs")
    assert str(elsewhere) not in cmd


def test_a_hidden_path_containing_a_needed_bind_is_refused() -> None:
    with pytest.raises(ValueError, match="which task workers need"):
        hidden_mounts([Path("/work")], BINDS)


def test_a_checkout_under_the_hosts_tmp_is_bound_over_the_private_tmp() -> None:
    """bwrap mounts in order: the private /tmp must come before the binds, or a venv that
    lives under the host's /tmp (a CI checkout in /tmp) is hidden and python not found."""
    venv = Path("/tmp/ci-checkout/.venv")
    cmd = command(binds=[venv])
    tmpfs_at = cmd.index("/tmp", cmd.index("--tmpfs"))
    bind_at = cmd.index(str(venv))
    assert cmd[cmd.index("--tmpfs") + 1] == "/tmp" and tmpfs_at < bind_at
