"""Persistence: sqlmodel tables and the queries the API and activities share."""
