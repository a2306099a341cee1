"""The delivery worker: claims due outbox rows, signs and POSTs them, records outcomes.

Only this package sends HTTP to subscribers. One shared ``aiohttp.ClientSession``
(15 s timeout, no redirects) whose resolver refuses private addresses when a connection
is opened, so the address checked is the address connected to. At most
``concurrency`` sends run at once and a subscription never holds more than
``per_endpoint`` rows (enforced when claiming), so one slow receiver never delays the
others. Outcomes are written in batches by one flusher, off the sending path.

Wake-ups: ``notify()`` (in-process, also called after any commit that enqueued), a
``poll_interval`` poll, and on PostgreSQL ``LISTEN crosswatch_outbox``.

One role a module: the claim loop (``loop.DeliveryWorker``, the entry point), the
dispatcher that starts claimed rows as sends finish (``dispatcher``), one attempt's
signed POST and its outcome (``sender``), the flusher that writes outcomes in batches
(``flusher``), and the worker's turns at the store (``store``).
"""

from app.webhooks.worker.loop import DeliveryWorker
from app.webhooks.worker.sender import message_body

__all__ = ["DeliveryWorker", "message_body"]
