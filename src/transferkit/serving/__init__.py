"""The prediction server: FastAPI app, limits, micro-batching and the web page."""
