"""CPU, memory and GPU usage of training and inference, sampled in the background.

Training runs log these figures next to their metrics so a slow run can be told apart from a starved
one. The GPU is read through NVML (the ``pynvml`` module of nvidia-ml-py) when one exists; a machine
without a GPU, a driver or the package is recorded as "no GPU" with the reason, never as an error,
because CPU-only is a normal way to run this service. No Lightning here: the training code wraps this
monitor in its own callback, so importing this module stays cheap.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import asdict, dataclass
from types import ModuleType, TracebackType
from typing import Any, Final, Self

import psutil

from forecasting.errors import PortableError

logger = logging.getLogger("forecasting.hardware")

_MB: Final = 1024.0 * 1024.0
#: The sampled fields, in the order summaries list them.
SAMPLE_FIELDS: Final = (
    "process_cpu_percent",
    "process_rss_mb",
    "system_ram_percent",
    "gpu_util_percent",
    "gpu_memory_mb",
)


class InvalidIntervalError(PortableError, ValueError):
    """A sampling interval that is not a positive, finite number of seconds."""

    def __init__(self, interval_s: float) -> None:
        super().__init__(
            f"sampling interval must be a positive number of seconds, got {interval_s}"
        )
        self.interval_s = interval_s


class MonitorStateError(PortableError, RuntimeError):
    """A monitor started twice, or read before it ever started."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"hardware monitor {problem}")


@dataclass(frozen=True, kw_only=True)
class HardwareSample:
    """One reading. ``at`` is Unix time in seconds; GPU fields are None without a usable GPU.

    ``process_cpu_percent`` is psutil's: 100 means one core fully busy, so it can exceed 100.
    ``gpu_memory_mb`` is the device's used memory, all processes together (NVML's view).
    """

    at: float
    process_cpu_percent: float
    process_rss_mb: float
    system_ram_percent: float
    gpu_util_percent: float | None
    gpu_memory_mb: float | None

    def to_dict(self) -> dict[str, float | None]:
        return asdict(self)


@dataclass(frozen=True, kw_only=True)
class GpuStatus:
    """Whether a GPU can be sampled, and if not, why not."""

    available: bool
    name: str | None = None
    device_count: int = 0
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class HardwareMonitor:
    """Samples this process's CPU and memory (and the GPU) every ``interval_s`` in a daemon thread.

    Use as a context manager around the work to measure. A sample is taken at the start and at the
    end as well, so even work shorter than one interval is measured. The thread is a daemon, so a
    monitor left running never keeps the process alive.
    """

    def __init__(self, interval_s: float = 0.5, *, gpu_index: int = 0) -> None:
        if not (
            isinstance(interval_s, int | float) and math.isfinite(interval_s) and interval_s > 0
        ):
            raise InvalidIntervalError(interval_s)
        self.interval_s = float(interval_s)
        self._process = psutil.Process()
        self._nvml = _NvmlProbe(device_index=gpu_index)
        self._gpu = GpuStatus(available=False, reason="monitor not started")
        self._samples: list[HardwareSample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started_at: float | None = None
        self._stopped_at: float | None = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def gpu(self) -> GpuStatus:
        return self._gpu

    @property
    def gpu_available(self) -> bool:
        return self._gpu.available

    @property
    def samples(self) -> tuple[HardwareSample, ...]:
        with self._lock:
            return tuple(self._samples)

    def start(self) -> None:
        if self._thread is not None:
            raise MonitorStateError("was already started; use a new one per measurement")
        self._gpu = self._nvml.open()
        # psutil measures CPU between two calls; this first call sets the baseline.
        self._process.cpu_percent(interval=None)
        self._started_at = time.time()
        self._thread = threading.Thread(target=self._run, name="hardware-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling (idempotent) after one last sample, and release NVML."""
        if self._thread is None:
            raise MonitorStateError("was never started")
        if self._stopped_at is not None:
            return
        self._stop.set()
        self._thread.join(timeout=self.interval_s + 5.0)
        self._record()
        self._stopped_at = time.time()
        self._nvml.close()

    def summary(self) -> dict[str, float | None]:
        """Mean and max of each field, the sample count, the duration and ``gpu_available``.

        A field with no values (the GPU fields without a GPU) has None for its mean and max.
        """
        samples = self.samples
        end = self._stopped_at if self._stopped_at is not None else time.time()
        duration = None if self._started_at is None else end - self._started_at
        result: dict[str, float | None] = {
            "samples": float(len(samples)),
            "duration_s": duration,
            "gpu_available": self._gpu.available,
        }
        for field in SAMPLE_FIELDS:
            values = [v for v in (getattr(s, field) for s in samples) if v is not None]
            result[f"{field}_mean"] = sum(values) / len(values) if values else None
            result[f"{field}_max"] = max(values) if values else None
        return result

    def _run(self) -> None:
        # Event.wait doubles as the sleep, so stop() never waits out a whole interval.
        while not self._stop.wait(self.interval_s):
            self._record()

    def _record(self) -> None:
        with self._process.oneshot():
            cpu = self._process.cpu_percent(interval=None)
            rss_mb = self._process.memory_info().rss / _MB
        gpu_util, gpu_memory_mb = self._nvml.read()
        sample = HardwareSample(
            at=time.time(),
            process_cpu_percent=cpu,
            process_rss_mb=rss_mb,
            system_ram_percent=psutil.virtual_memory().percent,
            gpu_util_percent=gpu_util,
            gpu_memory_mb=gpu_memory_mb,
        )
        with self._lock:
            self._samples.append(sample)


class _NvmlProbe:
    """NVML for one device, with every failure turned into "no GPU" plus a reason."""

    def __init__(self, *, device_index: int) -> None:
        self.device_index = device_index
        self._nvml: ModuleType | None = None
        self._handle: Any = None
        self._read_failed = False

    def open(self) -> GpuStatus:
        try:
            import pynvml
        except ImportError:
            return GpuStatus(available=False, reason="pynvml (nvidia-ml-py) is not installed")
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            return GpuStatus(available=False, reason=f"NVML unavailable: {exc}")
        try:
            count = int(pynvml.nvmlDeviceGetCount())
            if self.device_index >= count:
                pynvml.nvmlShutdown()
                return GpuStatus(
                    available=False,
                    device_count=count,
                    reason=f"no NVIDIA GPU at index {self.device_index} ({count} found)",
                )
            handle = pynvml.nvmlDeviceGetHandleByIndex(self.device_index)
            name = pynvml.nvmlDeviceGetName(handle)
        except pynvml.NVMLError as exc:
            pynvml.nvmlShutdown()
            return GpuStatus(available=False, reason=f"NVML device query failed: {exc}")
        self._nvml, self._handle = pynvml, handle
        return GpuStatus(
            available=True,
            name=name.decode() if isinstance(name, bytes) else str(name),
            device_count=count,
        )

    def read(self) -> tuple[float | None, float | None]:
        """GPU utilisation % and used memory in MB, or (None, None) without a usable GPU."""
        nvml = self._nvml
        if nvml is None:
            return None, None
        try:
            utilisation = nvml.nvmlDeviceGetUtilizationRates(self._handle)
            memory = nvml.nvmlDeviceGetMemoryInfo(self._handle)
        except nvml.NVMLError as exc:
            if not self._read_failed:
                self._read_failed = True
                logger.warning("GPU sampling failed, recording no GPU figures: %s", exc)
            return None, None
        return float(utilisation.gpu), float(memory.used) / _MB

    def close(self) -> None:
        nvml, self._nvml, self._handle = self._nvml, None, None
        if nvml is not None:
            try:
                nvml.nvmlShutdown()
            except nvml.NVMLError as exc:
                logger.debug("NVML shutdown failed: %s", exc)
