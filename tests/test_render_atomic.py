"""harden render is all or nothing and touches only its own files: a full disk, a directory where
a file goes, kill -9 in the middle, and the user's own files beside harden's."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from provisioner.baseline import parse_baseline
from provisioner.render import MANIFEST, render, render_files

REGIONS_A = ["eu-west-1"]
REGIONS_B = ["eu-west-1", "us-east-1"]


def _config(path: Path, regions: list[str], scp: bool = True) -> Path:
    path.write_text(f'home_region = "eu-west-1"\nregions = {regions!r}\n'.replace("'", '"')
                    + ("" if scp else "[scp]\nenabled = false\n"))
    return path


def _tree(root: Path) -> dict[str, bytes]:
    """Every file under root (staging folders included: they must be gone), by path."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _users_files(out: Path) -> dict[str, bytes]:
    mine = {
        "account/my_override.tf": b'# the user\'s\nlocals { mine = "yes" }\n',
        "modules/theirs/main.tf": b"# a module of their own\n",
        "account/terraform.tfstate": b'{"version": 4}\n',
        "account/.terraform/providers/lock": b"x\n",
        "notes.md": b"# their notes\n",
    }
    for rel, data in mine.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(data)
    return mine


def _cli(*args: str):
    from provisioner import cli

    return CliRunner().invoke(cli.app, list(args), env={"COLUMNS": "200", "AWS_ENDPOINT_URL": ""})


def test_render_never_deletes_a_file_harden_did_not_write(tmp_path):
    out = tmp_path / "tf"
    render(parse_baseline({"regions": REGIONS_B, "home_region": "eu-west-1"}), out, fmt=False)
    mine = _users_files(out)
    harden_wrote = set(__import__("json").loads((out / MANIFEST).read_text())["files"])
    assert "organization/main.tf" in harden_wrote and not set(mine) & harden_wrote
    # Without the SCPs there is no organization root: harden's files there go, nothing else.
    render(parse_baseline({"regions": REGIONS_A, "home_region": "eu-west-1", "scp": {"enabled": False}}),
           out, fmt=False)
    after = _tree(out)
    assert {rel: after.get(rel) for rel in mine} == mine
    assert not any(rel.startswith("organization/") for rel in after)
    assert not any(".harden-render-" in rel for rel in after)
    # A file harden wrote and the user edited since is theirs now: kept when harden drops it.
    render(parse_baseline({"regions": REGIONS_A, "home_region": "eu-west-1"}), out, fmt=False)
    (out / "organization" / "main.tf").write_text("# edited by hand\n")
    render(parse_baseline({"regions": REGIONS_A, "home_region": "eu-west-1", "scp": {"enabled": False}}),
           out, fmt=False)
    assert sorted(p.name for p in (out / "organization").iterdir()) == ["main.tf"]
    assert (out / "organization" / "main.tf").read_text() == "# edited by hand\n"


def test_a_directory_where_a_file_goes_is_exit_2_one_line_and_nothing_changes(tmp_path):
    out = tmp_path / "tf"
    assert _cli("render", "-c", str(_config(tmp_path / "a.toml", REGIONS_A)), "--dir", str(out)).exit_code == 0
    _users_files(out)
    (out / "account" / "variables.tf").unlink()
    (out / "account" / "variables.tf").mkdir()                # a directory where harden writes a file
    before = _tree(out)

    result = _cli("render", "-c", str(_config(tmp_path / "b.toml", REGIONS_B)), "--dir", str(out))

    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "is a directory where harden writes a file" in result.stderr
    assert _tree(out) == before                               # byte-identical, no staging folder


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def test_a_full_disk_is_exit_2_one_line_and_the_previous_output_is_byte_identical(tmp_path, monkeypatch):
    """On a real full filesystem (a small tmpfs) where the machine allows mounting one; else the
    write is made to raise ENOSPC (said in the skip-free fallback below)."""
    disk = tmp_path / "disk"
    mounted = _mount_tmpfs(disk, "2m")
    try:
        out = disk / "tf"
        assert _cli("render", "-c", str(_config(tmp_path / "a.toml", REGIONS_A)), "--dir", str(out)).exit_code == 0
        _users_files(out)
        if mounted:
            stat = os.statvfs(disk)
            with open(disk / "filler", "wb") as f:      # leave less room than a rendering needs
                f.write(b"\0" * max(0, stat.f_bavail * stat.f_frsize - 16 * 1024))
        else:  # no tmpfs here: the staging writes fail as a full disk fails them
            import errno

            import provisioner.render as r

            real, count = r._write_file, []

            def full(path, content):
                count.append(1)
                if len(count) > 3:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                real(path, content)

            monkeypatch.setattr(r, "_write_file", full)
        before = _tree(out)

        result = _cli("render", "-c", str(_config(tmp_path / "b.toml", REGIONS_B)), "--dir", str(out))

        assert result.exit_code == 2, result.stdout + result.stderr
        assert result.stderr.count("\n") == 1 and "No space left on device" in result.stderr, result.stderr
        assert _tree(out) == before
    finally:
        if mounted:
            subprocess.run(["umount", str(disk)], check=False)


def test_kill_9_mid_render_leaves_whole_files_and_the_next_render_finishes(tmp_path, zygote):
    """Killed while staging (nothing committed: the output is untouched, the staging folder is
    left) and at the first, a middle and the last rename after the commit (the next render rolls
    the journal forward). Either way the next render leaves exactly a fresh rendering beside the
    user's files, and no staging folder."""
    a, b = _config(tmp_path / "a.toml", REGIONS_A), _config(tmp_path / "b.toml", REGIONS_B)
    fresh = tmp_path / "fresh"
    assert _cli("render", "-c", str(b), "--dir", str(fresh)).exit_code == 0
    expected = _tree(fresh)
    old = tmp_path / "old"
    assert _cli("render", "-c", str(a), "--dir", str(old)).exit_code == 0
    renames = len(render_files(parse_baseline({"regions": REGIONS_B, "home_region": "eu-west-1"})))
    points = [("provisioner.render:_write_file:5", False)] + [
        (f"os:replace:{n}", True) for n in (2, renames // 2, renames + 2)]   # 1: the journal; last: the manifest
    for n, (point, committed) in enumerate(points):
        out = tmp_path / f"out{n}"
        shutil.copytree(old, out)
        mine = _users_files(out)
        before = _tree(out)
        answer, _, err = zygote.run("render", "-c", str(b), "--dir", str(out),
                                    HARDEN_FAULT_KILL_AT_CALL=point, AWS_ENDPOINT_URL="")
        assert answer == {"signal": 9}, (point, err)
        (stage,) = out.glob(".harden-render-*")
        now = _tree(out)
        outside = {k: v for k, v in now.items() if not k.startswith(".harden-render-")}
        if not committed:
            assert outside == before, point
        for rel, data in outside.items():              # every file whole: the old one or the new one
            assert data in (before.get(rel), expected.get(rel), mine.get(rel)), (point, rel)

        answer, _, err = zygote.run("render", "-c", str(b), "--dir", str(out), AWS_ENDPOINT_URL="")

        assert answer == {"code": 0}, err
        assert _tree(out) == {**expected, **mine}, point


def test_two_renders_into_one_folder_take_turns(tmp_path, monkeypatch):
    """A render waits while another holds the folder's lock, and gives up with one line after
    LOCK_WAIT (made short here) without touching anything."""
    import fcntl

    import provisioner.render as r

    out = tmp_path / "tf"
    render(parse_baseline({"regions": REGIONS_A, "home_region": "eu-west-1"}), out, fmt=False)
    before = _tree(out)
    monkeypatch.setattr(r, "LOCK_WAIT", 0.2)
    holder = os.open(out, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)       # another render, in the middle of its work
    try:
        with pytest.raises(r.RenderError, match="another harden render has been writing"):
            render(parse_baseline({"regions": REGIONS_B, "home_region": "eu-west-1"}), out, fmt=False)
        assert _tree(out) == before
    finally:
        os.close(holder)
    render(parse_baseline({"regions": REGIONS_B, "home_region": "eu-west-1"}), out, fmt=False)
    assert _tree(out) != before
