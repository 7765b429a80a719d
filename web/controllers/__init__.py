"""Litestar controllers, one per resource."""
