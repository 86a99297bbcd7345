"""ocoserver: a self-hosted server for OCO agents on aiohttp and SQLite."""

__version__ = "0.1.0"
