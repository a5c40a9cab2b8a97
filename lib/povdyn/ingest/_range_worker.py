"""Entry point of an ingest worker process: `python -m povdyn.ingest._range_worker`
(parallel._WorkerPool starts it; it checks csv byte ranges sent on its stdin)."""
from povdyn.ingest.parallel import serve_worker

if __name__ == "__main__":
    serve_worker()
