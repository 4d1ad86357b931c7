"""Run requests really in parallel: threads that start together, each on its own
database connection (as separate app-server workers would be)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from django.db import connections

T = TypeVar("T")


def in_parallel(count: int, work: Callable[[int], T]) -> list[T]:
    """work(0) … work(count - 1), each in its own thread, released at once by a barrier.

    The results come back in order; the first exception of any thread is raised.
    """
    barrier = threading.Barrier(count)
    results: list = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work(index)
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results
