"""The one shape of every background loop (catalog poll, model poll, outbox relay, consumers,
impression writer, scheduled training): started once, stopped once, sleeping in ``pause`` so
that a stop never waits out a sleep."""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod

__all__ = ["BackgroundLoop"]


class BackgroundLoop(ABC):
    def __init__(self, task_name: str) -> None:
        self._task_name = task_name
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @abstractmethod
    async def _run(self) -> None:
        """The loop: runs until ``stopping`` (or until cancelled by ``stop``)."""

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self._task_name)

    async def stop(self) -> None:
        """Ask the loop to end and wait for it. Subclasses that must not wait (a step can take
        minutes) or that flush afterwards override this around ``_end``."""
        await self._end()

    async def _end(self, *, cancel_after_s: float | None = None) -> None:
        """Set ``stopping``, then wait for the task; with ``cancel_after_s``, cancel it if it has
        not ended by then (0: at once). Whatever the task raised is the log's business, not the
        caller's: shutdown goes on."""
        self._stopping.set()
        if self._task is None:
            return
        if cancel_after_s is not None:
            _, pending = await asyncio.wait({self._task}, timeout=cancel_after_s)
            for task in pending:
                task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if ``stop`` is called meanwhile."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
