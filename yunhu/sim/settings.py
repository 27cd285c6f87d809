"""What the simulator does: token and link lifetimes, and the faults it injects."""

from __future__ import annotations

from dataclasses import dataclass, field
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class Faults:
    """Each a probability per API request (0 ≤ p ≤ 1) unless it says seconds."""

    ret500: float = 0.0  # `ret` 500 server error
    token_invalid: float = 0.0  # `ret` 600 for a valid token
    status1003: float = 0.0  # `ret` 200, `data.status` 1, `errors.code` 1003
    slow: float = 0.0  # answer after `slow_seconds`
    slow_seconds: float = 2.0
    expired_link: float = 0.0  # GetRecodeFile hands out a link that has already expired
    not_ready_seconds: float = 0.0  # a recording downloads only this long after its CDR
    # Hostile links, for testing the recordings service's guard:
    link_base: str = ""  # GetRecodeFile's links point here instead of at the simulator
    redirect_to: str = ""  # a download answers 302 to this base URL (same path)
    endless: bool = False  # a download never ends (no Content-Length)

    def __post_init__(self) -> None:
        for name in ("ret500", "token_invalid", "status1003", "slow", "expired_link"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"fault {name} must be a probability between 0 and 1")


@dataclass(frozen=True, slots=True)
class SimSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = ""  # base of download links; default http://host:port
    token_ttl: float = 12 * 3600.0
    link_ttl: float = 300.0
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    faults: Faults = field(default_factory=Faults)
    # companycode → ret code (601-604) that this tenant's logins answer with.
    denials: dict[str, int] = field(default_factory=dict)
    seed: int | None = None

    @property
    def base_url(self) -> str:
        return self.public_url.rstrip("/") or f"http://{self.host}:{self.port}"
