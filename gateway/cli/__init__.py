"""The `pacs-gateway` command line: main.py (serve, echo, find, fetch), keys.py (API keys)."""
