"""The scheduler/worker daemon on APScheduler 4: task functions, schedule registration, job and
event recording, and the daemon's main. Imports ``forecasting`` and ``db``, never ``web``."""
