"""The ML core of stockcast: data sources, validation, windowing, the LSTM, volatility models,
calibrated prediction intervals, probabilistic evaluation, the serving gate, artifacts, MLflow
tracking and hardware monitoring.

A leaf package: it imports no other stockcast package, so the scheduler, the API and the CLI can all
build on it. Importing it is cheap; torch, Lightning and MLflow are imported by the modules that
need them, so the API process can serve forecasts without loading Lightning.
"""
