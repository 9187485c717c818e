"""The HTTP service (`gesticulator serve`): FastAPI app, SQLite job store, worker queue."""
