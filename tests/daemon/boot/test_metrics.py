"""The metrics the running parts feed directly."""

from __future__ import annotations

from heliod.daemon.boot.metrics import Metrics


def test_poll_observer_counts_by_device_and_result_and_times_each_poll() -> None:
    metrics = Metrics()
    for device, ok, seconds in [("a", True, 0.002), ("a", True, 0.2), ("a", False, 3.0)]:
        metrics.polled(device, ok, seconds)
    metrics.polled("b", True, 0.001)
    value = metrics.registry.get_sample_value
    assert value("heliod_polls_total", {"device": "a", "result": "ok"}) == 2
    assert value("heliod_polls_total", {"device": "a", "result": "error"}) == 1
    assert value("heliod_polls_total", {"device": "b", "result": "ok"}) == 1
    assert value("heliod_polls_total", {"device": "b", "result": "error"}) is None  # none yet
    assert value("heliod_poll_duration_seconds_count", {"device": "a"}) == 3
    assert value("heliod_poll_duration_seconds_bucket", {"device": "a", "le": "0.005"}) == 1
    assert value("heliod_poll_duration_seconds_bucket", {"device": "a", "le": "0.25"}) == 2
