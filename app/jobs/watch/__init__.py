"""The intraday cross watch: live prices against each watched symbol's trigger close.

During each XNYS session the leading scheduler checks, every ``WATCH_INTERVAL_MINUTES``
from 15 minutes after the open until the close (exclusive), the **watch list**: the
(symbol, rule) pairs whose newest close needs to move at most ``WATCH_DISTANCE_PCT`` %
toward its trigger close to make a cross, those already beyond it included, for the
default rule and every subscription's rule. The trigger close is the kernel's
(:func:`app.signals.kernel.trigger_close`, as ``/v1/signals`` serves it) from the
closes up to the session before the watched one.

A live price at or beyond the trigger close in the direction of the cross writes a
live ``cross_watch`` event, id ``event_id(symbol, rule, "cross_watch", session)``:
inserted only if absent (``ON CONFLICT DO NOTHING … RETURNING``), and enqueued only by
the transaction that inserted it, so there is at most one per symbol, rule and session
whatever the number of checks or processes. Live prices are never stored as closes.

:func:`~app.jobs.watch.settle.settle_watches` runs after each poll that added
sessions: a ``cross_watch`` whose session's close is stored is confirmed by the cross
event detection wrote for it, or answered by a ``cross_watch_missed`` (same id scheme)
when the close did not cross.

One module per role: when checks run and whether they can (:mod:`.timing`), the watch
list (:mod:`.watchlist`), a live check and its events (:mod:`.check`), settling after
the close (:mod:`.settle`), and a check's lines for the command line (:mod:`.console`).
"""
