"""The Litestar API: watchlist, stored forecasts, on-demand training and inference, job status,
live events, metrics, and the dashboard. Imports ``forecasting`` and ``db``, never ``scheduler``."""
