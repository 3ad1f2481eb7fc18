"""Web UI served by the tracking server (pages, static files, chart API)."""
