"""How a failed job is logged: once, on one line, with a traceback only when it is a bug.

The runner logs every failure itself (kind, job, symbol, attempts, ``Type: message``) and raises
:class:`~scheduler.runner.JobFailedError` so that APScheduler records the outcome too; APScheduler
then logs "Job ... raised an exception" with the whole chained traceback, a second account of the
same failure. :class:`DropRecordedJobFailures` removes that one. An expected failure (a source that
lacks the symbol, bad rows, an invalid parameter) needs no traceback: the message says what to do.
An unexpected one (a ``TypeError``, a ``KeyError``) keeps its traceback, in the runner's line.
"""

from __future__ import annotations

import logging

from forecasting.sources import SourceError
from forecasting.validation import InvalidBarsError

#: Lookups that fail because code is wrong, not because the input was.
_BUG_LOOKUPS = (KeyError, IndexError)


def is_expected_failure(exc: BaseException) -> bool:
    """A failure of the input or of the outside world, which a person fixes without the code."""
    if isinstance(exc, _BUG_LOOKUPS):
        return False
    return isinstance(
        exc, SourceError | InvalidBarsError | LookupError | ValueError | TimeoutError | OSError
    )


class DropRecordedJobFailures(logging.Filter):
    """On APScheduler's logger: drop its report of a job the runner already logged as failed."""

    def __init__(self, recorded: type[BaseException]) -> None:
        super().__init__()
        self._recorded = recorded

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, self._recorded)


def install_job_failure_filter(logger: logging.Logger, recorded: type[BaseException]) -> None:
    """Idempotent: a logger gets one such filter however many schedulers start in the process."""
    if not any(isinstance(existing, DropRecordedJobFailures) for existing in logger.filters):
        logger.addFilter(DropRecordedJobFailures(recorded))
