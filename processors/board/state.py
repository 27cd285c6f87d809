"""The board's state, by event time: extension states, the minutes' calls, and the calls
still waiting for their other records.

`Board.apply_callstate` and `Board.apply_cdr` take each record and return what to
publish. Results depend on event times, not on the order records arrive in: an
extension's state is its latest event (ties broken by how far the call got, then by
uuid); a minute holds each call once (by uuid) and is published once `callstream.cdr`
has come past its end plus the allowed lateness (a CDR for a minute already published
republishes it, counted as late); a call missing a record is reported once the topic
that should have brought it has come past the call's deadline, and a complete call is
forgotten once both topics have (either may still bring more of it). How far a topic
has come is the oldest of the newest event times read from each of its partitions,
bounded by the stall time. Every change goes through a `Journal`, so a rolled-back
batch leaves no trace.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

import msgspec

from common.records import (
    AnomalyRecord,
    CallCounts,
    CallStateRecord,
    CauseCount,
    CdrRecord,
    ExtensionRecord,
    MinuteMetricsRecord,
    Stat,
)
from processors.board.journal import Journal

MINUTE_MS: Final = 60_000
KINDS: Final = ("callstate", "cdr")
STATES: Final = {"ring": "ringing", "answer": "talking", "hangup": "idle"}
# Orders events of one instant (then the call's uuid does, so any arrival order agrees).
PROGRESS: Final = {"ring": 0, "answer": 1, "hangup": 2}


def utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def minute_of(ms: int) -> int:
    return ms - ms % MINUTE_MS


@dataclass(frozen=True, slots=True)
class BoardSettings:
    lateness_ms: int = 120_000  # a minute is published this long after it ends
    reconcile_ms: int = 15 * MINUTE_MS  # a call's records must all be in by then
    # A call with no hangup yet may still be talking: its CDR is missed only this much
    # later (a hangup lost with the CDR still shows, late).
    max_call_ms: int = 4 * 60 * MINUTE_MS
    keep_minutes: int = 60  # minutes kept for the page
    # A partition or topic this far behind the newest record read (quiet, or stopped) no
    # longer holds decisions back.
    stall_ms: int = 600_000
    # of each input topic ("callstate", "cdr"): until each of a topic's partitions has been
    # read, how far the topic has come is not known
    partitions: Mapping[str, int] = field(default_factory=lambda: {"callstate": 1, "cdr": 1})


class CallFacts(msgspec.Struct, frozen=True, gc=False):
    """What a minute needs of one call's CDR."""

    direction: str
    answered: bool
    ring_seconds: int
    talk_seconds: int
    cause: str


class CallSeen(msgspec.Struct, frozen=True, gc=False):
    """A call's records so far, until its reconciliation deadlines."""

    last_ms: int
    callstate: bool
    cdr: bool
    # When each topic ("callstate", "cdr") must have brought the call's records: the
    # reconciliation time after its last record, or after where that topic was when the
    # record came, if later (a call posted whole after it ended has old events).
    due: dict[str, int] = msgspec.field(default_factory=dict)
    ended: bool = False  # a hangup or the CDR came: no longer talking


class Minute:
    """One tenant-minute: its calls by uuid; `published` once it has closed."""

    __slots__ = ("calls", "flags")

    def __init__(self) -> None:
        self.calls: dict[str, CallFacts] = {}
        self.flags: dict[str, int] = {}  # "published", "late": journalled like the calls


Output = tuple[str, str, bytes]  # (which topic: "extensions" | "metrics" | "anomalies", key, value)
_ENCODE: Final = msgspec.json.Encoder().encode


class Board:
    def __init__(self, settings: BoardSettings | None = None) -> None:
        self.settings = settings or BoardSettings()
        self.journal = Journal()
        self.extensions: dict[tuple[str, str], ExtensionRecord] = {}
        self.minutes: dict[tuple[str, int], Minute] = {}
        self.calls: dict[tuple[str, str], CallSeen] = {}
        # ("callstate" | "cdr", partition): the newest event time read from it
        self.highs: dict[tuple[str, int], int] = {}
        self.watermarks: dict[str, int] = {}  # per tenant: where its minutes are closed from
        self.closed_until: dict[str, int] = {}  # per tenant: minutes before this are published
        self.tenants: dict[str, bool] = {}  # every tenant seen: does it send call states?
        self.dropped: dict[str, int] = {}  # per tenant: CDRs too late for any kept minute
        # Per (tenant, topic a call may wait for): (deadline, uuid), pushed at each change
        # of a call's deadline; stale entries are skipped when they come up.
        self._due: dict[tuple[str, str], list[tuple[int, str]]] = {}

    # -- applying records ---------------------------------------------------------------

    def apply_callstate(self, record: CallStateRecord, partition: int = 0) -> list[Output]:
        at = record.started.epoch_ms if record.started else record.origin.received_at_ms
        out: list[Output] = []
        if not record.b_leg:
            out += self._extension(record, at)
        if not self.tenants.get(record.tenant):
            self.journal.put(self.tenants, record.tenant, True)
        ended = record.status == "hangup"
        self._seen(record.tenant, record.uuid, at, callstate=True, ended=ended)
        return out + list(self._advance("callstate", partition, at))

    def apply_cdr(self, record: CdrRecord, partition: int = 0) -> list[Output]:
        when = record.ended or record.started
        at = when.epoch_ms if when else record.origin.received_at_ms
        if record.tenant not in self.tenants:
            self.journal.put(self.tenants, record.tenant, False)
        out = self._count(record, at)
        self._seen(record.tenant, record.uuid, at, cdr=True)
        return out + list(self._advance("cdr", partition, at))

    def _extension(self, record: CallStateRecord, at: int) -> list[Output]:
        key = (record.tenant, record.extnumber)
        current = self.extensions.get(key)
        order = (at, PROGRESS.get(record.status, 1), record.uuid)
        if current is not None and order < (
            current.since_ms,
            PROGRESS.get(current.status, 1),
            current.call_uuid,
        ):
            return []  # an older event arriving late changes nothing
        outbound = record.direction == "outbound"
        state = ExtensionRecord(
            tenant=record.tenant,
            extnumber=record.extnumber,
            state=STATES.get(record.status, record.status),
            status=record.status,
            since=utc(at),
            since_ms=at,
            call_uuid=record.uuid,
            peer=record.callee if outbound else record.caller,
            direction=record.direction,
        )
        self.journal.put(self.extensions, key, state)
        return [("extensions", f"{record.tenant}/{record.extnumber}", _ENCODE(state))]

    def _count(self, record: CdrRecord, at: int) -> list[Output]:
        key = (record.tenant, minute_of(at))
        minute = self.minutes.get(key)
        if minute is None:
            closed = self.closed_until.get(record.tenant)
            if closed is not None and key[1] <= closed - self.settings.keep_minutes * MINUTE_MS:
                # Its minute's other calls are forgotten: republishing it would lose them.
                self.journal.put(
                    self.dropped, record.tenant, self.dropped.get(record.tenant, 0) + 1
                )
                return []
            minute = Minute()
            self.journal.put(self.minutes, key, minute)
            if closed is not None and key[1] <= closed:  # closed while it had no call
                self.journal.put(minute.flags, "published", 1)
        if record.uuid in minute.calls:
            return []
        facts = CallFacts(
            direction=record.direction,
            answered=record.answered,
            ring_seconds=record.ring_seconds or 0,
            talk_seconds=record.talk_seconds or 0,
            cause=record.hangup_cause.name if record.hangup_cause else "",
        )
        self.journal.put(minute.calls, record.uuid, facts)
        if not minute.flags.get("published"):
            return []
        self.journal.put(minute.flags, "late", minute.flags.get("late", 0) + 1)
        return [self._metrics(key, minute)]

    def _seen(
        self,
        tenant: str,
        uuid: str,
        at: int,
        *,
        callstate: bool = False,
        cdr: bool = False,
        ended: bool = False,
    ) -> None:
        key = (tenant, uuid)
        before = self.calls.get(key)
        last = at
        if before is not None:
            last = max(at, before.last_ms)
            callstate, cdr = callstate or before.callstate, cdr or before.cdr
            ended = ended or before.ended
        ended = ended or cdr
        due, marks = {}, self._marks()
        for kind in KINDS:
            due[kind] = max(last, marks[kind] or last) + self._wait(kind, ended)
            if before is None or before.due.get(kind) != due[kind]:
                heapq.heappush(self._due.setdefault((tenant, kind), []), (due[kind], uuid))
        seen = CallSeen(last_ms=last, callstate=callstate, cdr=cdr, due=due, ended=ended)
        self.journal.put(self.calls, key, seen)

    # -- the watermark ------------------------------------------------------------------

    def _advance(self, kind: str, partition: int, at: int) -> Iterator[Output]:
        if at <= self.highs.get((kind, partition), at - 1):
            return
        self.journal.put(self.highs, (kind, partition), at)
        marks = self._marks()
        for tenant in sorted(self.tenants):
            mark = marks["cdr"]
            if mark is not None and mark > self.watermarks.get(tenant, mark - 1):
                self.journal.put(self.watermarks, tenant, mark)
                yield from self._close_minutes(tenant, mark)
            for waited in KINDS:
                yield from self._reconcile(tenant, waited, marks)

    def _marks(self) -> dict[str, int | None]:
        """How far each topic's records have certainly come: the oldest of the newest
        event times read from each of its partitions (partitions and topics are read at
        their own pace; each decides only what depends on itself), but never more than
        `stall_ms` behind the newest record read anywhere (a partition or topic gone quiet)."""
        if not self.highs:
            return dict.fromkeys(KINDS)
        behind = max(self.highs.values()) - self.settings.stall_ms
        marks: dict[str, int | None] = {}
        for kind in KINDS:
            own = [t for (k, _), t in self.highs.items() if k == kind]
            read_all = len(own) >= self.settings.partitions[kind]
            marks[kind] = max(min(own), behind) if read_all else behind
        return marks

    def _close_minutes(self, tenant: str, mark: int) -> Iterator[Output]:
        last = minute_of(mark - self.settings.lateness_ms) - MINUTE_MS  # the newest closed
        start = self.closed_until.get(tenant)
        if start is None:  # the first record of the tenant: older minutes are not ours
            start = last - self.settings.keep_minutes * MINUTE_MS
        for minute_ms in range(start + MINUTE_MS, last + MINUTE_MS, MINUTE_MS):
            key = (tenant, minute_ms)
            minute = self.minutes.get(key)
            if minute is not None and not minute.flags.get("published"):
                self.journal.put(minute.flags, "published", 1)
                yield self._metrics(key, minute)
            stale = (tenant, minute_ms - self.settings.keep_minutes * MINUTE_MS)
            self.journal.pop(self.minutes, stale)
        if last > start:
            self.journal.put(self.closed_until, tenant, last)

    def _reconcile(
        self, tenant: str, waited: str, marks: dict[str, int | None]
    ) -> Iterator[Output]:
        """The calls whose deadline the `waited` topic has passed: one still without a
        record of that topic is an anomaly; a complete one is forgotten."""
        heap, mark = self._due.get((tenant, waited)), marks[waited]
        while heap and mark is not None and heap[0][0] <= mark:
            deadline, uuid = self.journal.heappop(heap)
            seen = self.calls.get((tenant, uuid))
            if seen is None or seen.due.get(waited) != deadline:
                continue  # stale: the call moved on, or was settled already
            missing = (
                None if seen.callstate and seen.cdr else "cdr" if seen.callstate else "callstate"
            )
            if missing is not None and missing != waited:
                continue  # the other topic decides this one
            if missing is None and not self._passed(seen, marks):
                continue  # the other topic may still bring more of it: it decides
            self.journal.pop(self.calls, (tenant, uuid))
            if missing is None or (missing == "callstate" and not self.tenants.get(tenant)):
                # Complete, or its tenant sends no call states. That is learnt from the
                # data, so a CDR waits for the call-state topic either way: its tenant's
                # first call state may still be on its way, and it may be this call's.
                continue
            yield self._anomaly(tenant, uuid, waited, seen, mark)

    def _wait(self, kind: str, ended: bool) -> int:
        """How long after its last record a call may wait for one of `kind`: a call
        with no hangup yet may still be talking, so its CDR may wait the longest call
        more."""
        if kind == "cdr" and not ended:
            return self.settings.reconcile_ms + self.settings.max_call_ms
        return self.settings.reconcile_ms

    @staticmethod
    def _passed(seen: CallSeen, marks: dict[str, int | None]) -> bool:
        """Both topics have come past the call's deadlines."""
        return all((marks[kind] or 0) >= seen.due[kind] for kind in KINDS)

    def _anomaly(self, tenant: str, uuid: str, waited: str, seen: CallSeen, mark: int) -> Output:
        if waited == "cdr":
            lacking = "CDR" if seen.ended else "hangup or CDR"
            kind, detail = "missing_cdr", f"call-state events but no {lacking}"
        else:
            kind, detail = "missing_callstate", "a CDR but no call-state event"
        anomaly = AnomalyRecord(
            kind=kind,
            tenant=tenant,
            uuid=uuid,
            last_event=utc(seen.last_ms),
            detected_at=utc(mark),
            detail=f"{detail} within {self._wait(waited, seen.ended) // 1000}s",
        )
        return ("anomalies", f"{tenant}/{uuid}", _ENCODE(anomaly))

    # -- what is published --------------------------------------------------------------

    def _metrics(self, key: tuple[str, int], minute: Minute) -> Output:
        tenant, minute_ms = key
        record = minute_metrics(tenant, minute_ms, minute)
        return ("metrics", f"{tenant}/{record.minute}", _ENCODE(record))

    def recent(self, tenant: str) -> list[MinuteMetricsRecord]:
        """The tenant's kept minutes, oldest first (the page's charts)."""
        found = sorted((m, minute) for (t, m), minute in self.minutes.items() if t == tenant)
        return [minute_metrics(tenant, m, minute) for m, minute in found]

    # -- the pipe's batches (`BatchHooks`) ------------------------------------------------

    def started(self) -> None:
        self.journal.started()

    def committed(self) -> None:
        self.journal.committed()

    def aborted(self) -> None:
        self.journal.aborted()


def minute_metrics(tenant: str, minute_ms: int, minute: Minute) -> MinuteMetricsRecord:
    calls = list(minute.calls.values())
    answered = [c for c in calls if c.answered]
    directions: dict[str, list[CallFacts]] = {}
    for call in calls:
        directions.setdefault(call.direction, []).append(call)
    causes = Counter(c.cause for c in calls if c.cause)
    return MinuteMetricsRecord(
        tenant=tenant,
        minute=utc(minute_ms),
        minute_ms=minute_ms,
        offered=len(calls),
        answered=len(answered),
        missed=len(calls) - len(answered),
        answer_rate=round(len(answered) / len(calls), 4) if calls else 0.0,
        ring_seconds=stat([c.ring_seconds for c in calls]),
        talk_seconds=stat([c.talk_seconds for c in answered]),
        hangup_causes=[
            CauseCount(name, n)
            for name, n in sorted(causes.items(), key=lambda i: (-i[1], i[0]))[:5]
        ],
        by_direction={
            d: CallCounts(len(cs), sum(c.answered for c in cs), sum(not c.answered for c in cs))
            for d, cs in sorted(directions.items())
        },
        late_calls=minute.flags.get("late", 0),
    )


def top(counts: Counter[str], most: int) -> list[tuple[str, int]]:
    """The most frequent first; ties by name, so the result does not depend on order."""
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:most]


def stat(values: list[int]) -> Stat:
    """Mean and 90th percentile (nearest rank); zeros when there is nothing to measure."""
    if not values:
        return Stat(0.0, 0.0)
    ordered = sorted(values)
    rank = max(0, -(-9 * len(ordered) // 10) - 1)
    return Stat(round(sum(ordered) / len(ordered), 2), float(ordered[rank]))
