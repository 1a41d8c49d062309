"""The locks of provisioner/report_stream.py, at the moments a real run cannot be stopped at from
outside: between opening a staged report and locking it, and between reading a stream and
appending to it. (The whole-process cases, kill -9 and two runs at once, are in
test_organization_scale.py.)"""

from __future__ import annotations

import os

from provisioner import report_stream


def test_a_staged_report_renamed_into_place_between_open_and_lock_is_not_cut(tmp_path, monkeypatch):
    # Run A renames its finished staging file into place and drops its lock just as run B opens the
    # same staging name: B's descriptor is A's report. B must not cut it, but start a file of its own.
    final = tmp_path / "org.txt"
    staging = report_stream._staging(final)
    staging.write_text("run A's whole report\n")
    real_lock = report_stream._lock
    renamed = []

    def a_finishes_first(fd, path):
        if not renamed:
            os.replace(staging, final)
            renamed.append(True)
        real_lock(fd, path)

    monkeypatch.setattr(report_stream, "_lock", a_finishes_first)
    handle = report_stream._open_exclusive(staging, final)
    handle.write("run B\n")
    handle.close()

    assert renamed and final.read_text() == "run A's whole report\n"
    assert staging.read_text() == "run B\n"
