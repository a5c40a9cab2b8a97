"""Items of an iterator made ahead in a thread of their own while the caller works on
the ones before: pyarrow parses csv blocks, reads parquet and compresses, and DuckDB runs
queries, all without Python's lock, so the two overlap on two cores."""
from __future__ import annotations

import queue
import threading


def made_ahead(items, depth: int = 1, name: str = "povdyn-ahead"):
    """The items of the iterable `items`, in order, each made in a thread while the
    caller works on those before it, at most `depth` waiting (memory: `depth` items
    more). An error in the thread is raised here, after the items made before it; a
    caller that stops early stops the thread (it ends once the item it is making is
    made) and waits for it."""
    finished = object()
    waiting: queue.Queue = queue.Queue(maxsize=max(1, depth))
    failure: list[BaseException] = []
    stop = threading.Event()

    def hand_over(item) -> bool:
        while not stop.is_set():
            try:
                waiting.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for item in items:
                if not hand_over(item):
                    return
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
            failure.append(exc)
        hand_over(finished)

    worker = threading.Thread(target=produce, name=name, daemon=True)
    worker.start()
    try:
        while (item := waiting.get()) is not finished:
            yield item
        if failure:
            raise failure[0]
    finally:
        stop.set()
        worker.join()
