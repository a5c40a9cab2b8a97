"""Entry point of the ingest workers: `python -m povdyn.ingest._range_worker [R,W ...]`
(parallel._WorkerPool starts it; it checks csv byte ranges sent on its stdin, and forks
one more worker for each pipe pair R,W it is given: serve_workers)."""
import sys

from povdyn.ingest.parallel import serve_workers

if __name__ == "__main__":
    serve_workers([tuple(int(fd) for fd in arg.split(",")) for arg in sys.argv[1:]])
