-- Runs once, when the PostgreSQL volume is first initialised: MLflow keeps its tracking and
-- registry tables in a database of its own, next to stockcast's.
CREATE DATABASE mlflow OWNER stockcast;
