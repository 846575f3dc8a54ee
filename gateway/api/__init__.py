"""The HTTP API (v1): FastAPI routers over `gateway.service.Gateway`; see app.create_app."""
