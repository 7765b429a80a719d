"""What runs in the training child process: one call of ``forecasting.training.train_challenger``.

Training is CPU-bound for minutes and imports Lightning; in a child process it never blocks the
worker's event loop, its memory goes back to the system when the process is retired, and a
crash (out of memory, a kill) costs one job, not the worker. The request and the outcome are plain
values: they cross the process boundary through anyio's worker-process pipe.
"""

from __future__ import annotations

import builtins
import ctypes
import ctypes.util
import logging
import os
import signal
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import pandas as pd

from forecasting.artifacts import ModelArtifact
from forecasting.config import BacktestConfig, ModelConfig, TrainConfig
from forecasting.errors import PortableError
from forecasting.promotion import PromotionPolicy

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from forecasting.training import TrainingOutcome

P = ParamSpec("P")
R = TypeVar("R")


#: Fields of a request that set up the child rather than the training.
_CHILD_SETTINGS = frozenset({"log_level", "parent_pid", "niceness"})
#: ``prctl`` option: the signal the kernel sends this process when its parent dies.
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True, kw_only=True)
class TrainingRequest:
    """Everything one training needs, built by the retrain task from the database: the keyword
    arguments of ``train_challenger``, and the log level the child reports at."""

    symbol: str
    bars: pd.DataFrame
    model_config: ModelConfig
    train_config: TrainConfig
    backtest_config: BacktestConfig
    policy: PromotionPolicy
    champion: ModelArtifact | None
    tracking_uri: str | None
    model_name: str | None
    artifact_root: str | None
    log_level: int = logging.INFO
    #: The worker's process id, taken where the request is built: the child exits at once if its
    #: parent already died before the death signal was armed.
    parent_pid: int = field(default_factory=os.getpid)
    #: Added to the child's nice value: training yields the CPU to the API and the scheduler.
    niceness: int = 10

    def challenger_arguments(self) -> dict[str, Any]:
        """The request as ``train_challenger``'s keyword arguments (every field but the log
        level), passed whole rather than copied field by field."""
        return {
            item.name: getattr(self, item.name)
            for item in fields(self)
            if item.name not in _CHILD_SETTINGS
        }


def _log_to_parent_stderr(level: int) -> None:
    # anyio points the child's sys.stderr at /dev/null to keep its pipe clean, but file
    # descriptor 2 is still the parent's stderr: send the training progress there.
    root = logging.getLogger()
    if any(getattr(handler, "_stockcast_child", False) for handler in root.handlers):
        return
    stream = os.fdopen(os.dup(2), "w", buffering=1)
    handler = logging.StreamHandler(stream)
    handler._stockcast_child = True  # type: ignore[attr-defined]
    handler.setFormatter(
        logging.Formatter(f"%(asctime)s %(levelname)s [train {os.getpid()}] %(name)s: %(message)s")
    )
    root.addHandler(handler)
    root.setLevel(level)
    sys.stderr = stream


class TrainingChildError(PortableError, RuntimeError):
    """An exception of the training child whose own class may not rebuild in the worker (a
    library's error with a keyword-only or extra-argument constructor): its class name, message
    and the child's traceback, as plain strings, so the worker reports what really happened
    instead of an unpickling ``TypeError``."""

    def __init__(self, *, error_type: str, message: str, child_traceback: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message
        self.child_traceback = child_traceback


def portable_error(error: Exception) -> Exception:
    """``error`` itself when its class is known to rebuild in the worker (a builtin exception, or
    a :class:`PortableError` such as ``InsufficientDataError``), else a :class:`TrainingChildError`
    that names it. The child's traceback is attached as a note either way: the worker's log shows
    where in the child it was raised."""
    where = "".join(traceback.format_exception(error))
    if isinstance(error, PortableError) or getattr(builtins, type(error).__name__, None) is type(
        error
    ):
        error.add_note(f"raised in the training child (pid {os.getpid()}):\n{where}")
        return error
    return TrainingChildError(
        error_type=f"{type(error).__module__}.{type(error).__qualname__}",
        message=str(error),
        child_traceback=where,
    )


def run_portably(function: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Call ``function`` in the child; whatever it raises leaves as :func:`portable_error`."""
    try:
        return function(*args, **kwargs)
    except Exception as error:
        # ``from None``: the chain stays in the child; the note (or the structured error)
        # carries its traceback as text.
        raise portable_error(error) from None


def die_with_parent(parent_pid: int) -> None:
    """Have the kernel kill this process when its parent dies (Linux ``PR_SET_PDEATHSIG``).

    Without it a ``kill -9`` of the worker left the child training for minutes, re-parented to
    PID 1, beside the re-run the restart began, and registering a model no database row knew.
    Idempotent, so a reused worker process may call it before every training.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            logger.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
    # The parent may have died before the signal was armed: then there is nobody to answer.
    if os.getppid() != parent_pid:
        os._exit(1)


def lower_priority(niceness: int) -> None:
    """Raise the child's nice value to ``niceness`` above the worker's (once: a reused worker
    process keeps it), so reads served by the API stay fast while a model trains."""
    target = os.getpriority(os.PRIO_PROCESS, os.getppid()) + niceness
    current = os.nice(0)
    if current < target:
        os.nice(target - current)


def train_in_child(request: TrainingRequest) -> TrainingOutcome:
    """Train and judge one challenger (runs in the child process)."""
    from forecasting.training import train_challenger

    die_with_parent(request.parent_pid)
    lower_priority(request.niceness)
    _log_to_parent_stderr(request.log_level)
    return run_portably(train_challenger, **request.challenger_arguments())
