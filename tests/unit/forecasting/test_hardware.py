"""Hardware sampling: real CPU and memory readings, and an absent GPU recorded, not raised."""

from __future__ import annotations

import math
import shutil
import sys
import time
from pathlib import Path

import psutil
import pytest

from forecasting.hardware import (
    HardwareMonitor,
    InvalidIntervalError,
    MonitorStateError,
)

# Decided without NVML, so the GPU assertions below are checked against an independent fact.
HAS_NVIDIA_GPU = Path("/dev/nvidiactl").exists() or shutil.which("nvidia-smi") is not None


def burn_cpu(seconds: float) -> int:
    deadline = time.perf_counter() + seconds
    total = 0
    while time.perf_counter() < deadline:
        total += sum(i * i for i in range(2_000))
    return total


def test_monitor_samples_a_cpu_busy_loop() -> None:
    with HardwareMonitor(interval_s=0.1) as monitor:
        assert burn_cpu(1.0) > 0

    samples = monitor.samples
    # ~10 ticks plus the final sample; a loaded 2-core machine may delay some ticks.
    assert len(samples) >= 4
    assert [s.at for s in samples] == sorted(s.at for s in samples)
    own_rss_mb = psutil.Process().memory_info().rss / 2**20
    for sample in samples:
        assert 0 < sample.process_rss_mb <= own_rss_mb * 2
        assert 0 <= sample.system_ram_percent <= 100
    # A pure-Python loop keeps one core busy (100 %), even shared with other work far above an
    # idle process's ~0 %. (psutil counts 10 ms ticks: one tick in a 0.1 s interval is 10 %.)
    assert max(s.process_cpu_percent for s in samples) > 20

    summary = monitor.summary()
    assert summary["samples"] == len(samples)
    duration = summary["duration_s"]
    assert duration is not None and 0.95 < duration < 6
    rss_mean, rss_max = summary["process_rss_mb_mean"], summary["process_rss_mb_max"]
    assert rss_mean is not None and rss_max is not None
    assert 0 < rss_mean <= rss_max
    assert math.isclose(rss_max, max(s.process_rss_mb for s in samples))
    cpu_max = summary["process_cpu_percent_max"]
    assert cpu_max == max(s.process_cpu_percent for s in samples)


def test_work_shorter_than_one_interval_still_gets_a_sample() -> None:
    with HardwareMonitor(interval_s=10) as monitor:
        burn_cpu(0.05)

    assert len(monitor.samples) == 1
    assert monitor.samples[0].process_rss_mb > 0


@pytest.mark.skipif(HAS_NVIDIA_GPU, reason="checks the no-GPU path; the GPU path is tested below")
def test_absent_gpu_is_recorded_with_a_reason() -> None:
    with HardwareMonitor(interval_s=0.05) as monitor:
        burn_cpu(0.15)

    assert monitor.gpu_available is False
    assert monitor.gpu.name is None
    assert monitor.gpu.reason
    assert all(s.gpu_util_percent is None and s.gpu_memory_mb is None for s in monitor.samples)
    summary = monitor.summary()
    assert summary["gpu_available"] is False
    assert summary["gpu_util_percent_mean"] is None
    assert summary["gpu_memory_mb_max"] is None


@pytest.mark.skipif(
    not HAS_NVIDIA_GPU, reason="needs an NVIDIA GPU; the no-GPU path is tested above"
)
def test_present_gpu_is_sampled() -> None:
    with HardwareMonitor(interval_s=0.05) as monitor:
        burn_cpu(0.15)

    assert monitor.gpu_available is True
    assert monitor.gpu.name
    assert all(s.gpu_memory_mb is not None and s.gpu_memory_mb > 0 for s in monitor.samples)
    assert all(s.gpu_util_percent is not None for s in monitor.samples)


def test_missing_nvml_package_is_a_reason_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes ``import pynvml`` fail as if nvidia-ml-py were not installed.
    monkeypatch.setitem(sys.modules, "pynvml", None)

    with HardwareMonitor(interval_s=10) as monitor:
        pass

    assert monitor.gpu.to_dict() == {
        "available": False,
        "name": None,
        "device_count": 0,
        "reason": "pynvml (nvidia-ml-py) is not installed",
    }


def test_bad_interval_and_reuse_are_refused() -> None:
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(InvalidIntervalError):
            HardwareMonitor(interval_s=bad)
    monitor = HardwareMonitor(interval_s=0.05)
    with pytest.raises(MonitorStateError, match="never started"):
        monitor.stop()
    with monitor:
        pass
    with pytest.raises(MonitorStateError, match="already started"), monitor:
        pass


def test_importing_hardware_does_not_import_lightning_or_torch() -> None:
    import subprocess

    code = (
        "import sys, forecasting.hardware; "
        "print(sorted(m for m in ('lightning', 'torch', 'pynvml') if m in sys.modules))"
    )
    repo_root = Path(__file__).resolve().parents[3]
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=repo_root
    )
    assert result.stdout.strip() == "[]"
