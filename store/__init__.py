"""Persistence: sqlmodel tables, and one module of reads and writes per aggregate, shared
by the API, the activities and the admin CLI. Every read that takes an id from a client
also takes the caller's organization, so another organization's rows are simply not
found."""
