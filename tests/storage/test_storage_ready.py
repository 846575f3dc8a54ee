"""/ready's storage line: the figures, and not ready when the floor cannot be kept."""

from __future__ import annotations

from gateway.service import Gateway
from testkit.gateways import closed_pacs_settings

MB = 10**6


def test_ready_says_the_figures_and_turns_not_ready_below_the_floor(tmp_path, small_disks):
    disk = small_disks(20 * MB)
    roomy = Gateway(
        closed_pacs_settings(tmp_path / "a", storage_dir=disk / "a", storage_min_free_gb=0.005)
    )
    check = roomy.readiness().checks["storage"]
    assert check.ok
    assert "0 MB of studies, " in check.detail and "(keeps 5 MB free)" in check.detail

    cramped = Gateway(
        closed_pacs_settings(
            tmp_path / "b", storage_dir=disk / "b", storage_min_free_gb=1, storage_max_gb=2
        )
    )
    check = cramped.readiness().checks["storage"]
    assert not check.ok
    assert check.detail.startswith("below its free-space floor: 0 MB of studies, ")
    assert "(keeps 1.0 GB free, holds at most 2.0 GB)" in check.detail
    assert check.detail.endswith("Free space on the disk.")
