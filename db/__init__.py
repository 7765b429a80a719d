"""The service's SQL store: SQLAlchemy 2 models, engine and session factories, and the repositories
that hold every query the other packages need.

A leaf package: it imports no other stockcast package. The schema changes only through the Alembic
revisions in ``migrations/``.
"""
