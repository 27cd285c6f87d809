"""The simulator's memory: issued tokens, known recordings and download links."""

from __future__ import annotations

import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Recording:
    filename: str
    companycode: str
    seconds: int
    ready_at: float  # monotonic time from which it can be downloaded


@dataclass(frozen=True, slots=True)
class Link:
    filename: str
    expires_at: float  # monotonic
    expires_wall: float  # epoch seconds, for the `expiredtime` label


@dataclass
class SimState:
    clock: Callable[[], float] = time.monotonic
    tokens: dict[str, tuple[str, float]] = field(default_factory=dict)  # token → tenant, expiry
    recordings: dict[str, Recording] = field(default_factory=dict)
    links: dict[str, Link] = field(default_factory=dict)
    logins: Counter[str] = field(default_factory=Counter)
    requests: Counter[str] = field(default_factory=Counter)
    downloads: int = 0  # requests for a recording, whatever came of them

    def issue_token(self, companycode: str, ttl: float) -> str:
        now = self.clock()
        for stale in [k for k, (_, expiry) in self.tokens.items() if expiry <= now]:
            del self.tokens[stale]
        token = secrets.token_hex(16)
        self.tokens[token] = (companycode, now + ttl)
        self.logins[companycode] += 1
        return token

    def tenant_of(self, token: str) -> str | None:
        found = self.tokens.get(token)
        if found is None:
            return None
        if self.clock() >= found[1]:
            del self.tokens[token]
            return None
        return found[0]

    def revoke(self, token: str) -> bool:
        return self.tokens.pop(token, None) is not None

    def add_recording(self, filename: str, companycode: str, seconds: int, delay: float) -> None:
        self.recordings[filename] = Recording(filename, companycode, seconds, self.clock() + delay)

    def issue_link(self, filename: str, ttl: float) -> str:
        self._forget_expired_links()
        link_id = secrets.token_urlsafe(18)
        self.links[link_id] = Link(filename, self.clock() + ttl, time.time() + ttl)
        return link_id

    def _forget_expired_links(self) -> None:
        # Bounded memory: links are short-lived; drop those expired a while ago.
        horizon = self.clock() - 3600
        for link_id in [k for k, v in self.links.items() if v.expires_at < horizon]:
            del self.links[link_id]
