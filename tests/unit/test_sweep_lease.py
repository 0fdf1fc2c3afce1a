"""The pure rules of the sweep lease: who sweeps, and how long a part holds its bucket."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from stocksync.logic.sweep_lease import SweepAdmission, admit, sweep_lease_name, sweep_lease_until

NOW = datetime(2026, 12, 4, 16, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("continuation", "holds_lease", "admission"),
    [
        (False, True, SweepAdmission.PROCEED),  # a scheduled start that got the bucket
        (True, True, SweepAdmission.PROCEED),  # a continuation that renewed its run's lease
        (False, False, SweepAdmission.SKIP),  # a scheduled start while another run sweeps: that run covers it
        (True, False, SweepAdmission.STOP),  # a continuation whose run lost the bucket
    ],
)
def test_only_the_holder_sweeps(continuation: bool, holds_lease: bool, admission: SweepAdmission) -> None:
    assert admit(continuation=continuation, holds_lease=holds_lease) is admission


def test_a_part_holds_its_bucket_for_twice_the_time_its_invocation_has() -> None:
    # 300 s timeout: the part ends by +300 s, and the continuation has until +600 s to start and renew.
    assert sweep_lease_until(NOW, 300.0) == NOW + timedelta(seconds=600)
    assert sweep_lease_until(NOW, -1.0) == NOW  # a clock that says no time is left gives no lease beyond now


def test_each_bucket_has_its_own_lease() -> None:
    assert sweep_lease_name("fast") == "sweep#fast" != sweep_lease_name("slow")
