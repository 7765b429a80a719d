"""What the handlers delegate to: each service does one job with the repositories, the job queue
or the forecasting core, and raises domain errors that ``web.errors`` maps to problem details."""
