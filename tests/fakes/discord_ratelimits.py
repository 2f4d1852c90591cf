"""The Discord stand-in's REST rate limits and its count of invalid requests.

Modelled on `topics/rate-limits.mdx`:
- "Per-route rate limits": each limited route has a bucket per top-level resource (channel, guild, or webhook id
  and token); every answer on it carries `X-RateLimit-Limit`, `-Remaining`, `-Reset`, `-Reset-After` and
  `-Bucket`, and a request on an exhausted bucket gets 429 with `retry_after` and `X-RateLimit-Scope: user`.
- "Global Rate Limit": 50 requests a second for the bot over every route except the interaction endpoints
  (callbacks and the interaction webhooks are "not bound to the bot's Global Rate Limit").
- "Exceeding A Rate Limit": a 429 has a JSON body `{message, retry_after, global}` and `Retry-After`; the stand-in
  also sends `Via`, as Discord's own front end does (discord.py takes a 429 without it for a Cloudflare ban).
- 429s on demand (`throttle`): for the next requests matching a route, with the scope the test chooses (`user`,
  `shared` for a resource limit, `global`), as Discord sends when limits it does not announce are hit.
- "Invalid Request Limit": every 401, 403 and 429 (except 429s with scope `shared`) counts toward 10,000 per
  10 minutes per IP; `InvalidRequests` records them, marking the 429s a test injected, so a test can assert
  that the bot wasted none.
The bucket sizes are ones Discord has been seen to send; the docs say never to hard-code them, and the bot only
ever reads the headers (through discord.py).
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

Scope = Literal["user", "shared", "global"]

GLOBAL_LIMIT = 50
GLOBAL_WINDOW = 1.0
# Only these statuses count toward the invalid request limit (rate-limits.mdx, "Invalid Request Limit").
INVALID_STATUSES = frozenset({401, 403, 429})
_VIA = "1.1 google"


class RouteLimit(NamedTuple):
    """A per-route bucket: `limit` requests per `window` seconds for each top-level resource of the path."""

    method: str
    pattern: re.Pattern[str]
    name: str
    limit: int
    window: float


def _route(method: str, pattern: str, name: str, limit: int, window: float) -> RouteLimit:
    return RouteLimit(method, re.compile(pattern + "$"), name, limit, window)


_APP = r"/webhooks/(?P<webhook_id>\d+)/(?P<webhook_token>[^/]+)"
ROUTE_LIMITS: tuple[RouteLimit, ...] = (
    _route("POST", r"/channels/(?P<channel_id>\d+)/messages", "channel-messages-create", 5, 5.0),
    _route("PATCH", r"/channels/(?P<channel_id>\d+)/messages/\d+", "channel-messages-edit", 5, 5.0),
    _route("DELETE", r"/channels/(?P<channel_id>\d+)/messages/\d+", "channel-messages-delete", 5, 1.0),
    _route("GET", r"/guilds/(?P<guild_id>\d+)/members/\d+", "guild-member", 10, 10.0),
    _route("POST", _APP, "webhook-execute", 5, 2.0),
    _route("PATCH", _APP + r"/messages/(?:@original|\d+)", "webhook-message-edit", 5, 2.0),
    _route("DELETE", _APP + r"/messages/(?:@original|\d+)", "webhook-message-delete", 5, 2.0),
    _route("PUT", r"/applications/\d+(?:/guilds/(?P<guild_id>\d+))?/commands", "commands-overwrite", 5, 20.0),
)
# The interaction endpoints: callbacks and the application's own webhook with an interaction token.
_INTERACTION_PATHS = re.compile(r"^/(?:interactions/\d+/[^/]+/callback|webhooks/\d+/[^/]+(?:/.*)?)$")


@dataclass
class _Bucket:
    limit: int
    window: float
    remaining: int = 0
    reset_at: float = 0.0

    def take(self, now: float) -> bool:
        """Spend one request if the window has one left (starting a new window when the old one is over)."""
        if now >= self.reset_at:
            self.remaining = self.limit
            self.reset_at = now + self.window
        if self.remaining <= 0:
            return False
        self.remaining -= 1
        return True


@dataclass
class _Throttle:
    method: str | None
    pattern: re.Pattern[str]
    count: int
    retry_after: float
    scope: Scope


class Admission(NamedTuple):
    """What the limiter decided for one request: the headers to add, and a 429 body when it is refused."""

    headers: dict[str, str]
    refusal: dict[str, Any] | None
    scope: Scope | None
    injected: bool


class InvalidRequest(NamedTuple):
    """A request answered 401, 403 or 429 (not shared): counted by Discord toward banning the IP."""

    method: str
    path: str
    status: int
    code: int | None
    injected: bool  # a 429 the test asked for, which the bot could not have avoided


@dataclass
class RateLimits:
    """Per-route buckets, the global limit, and 429s on demand."""

    enabled: bool = True
    global_limit: int = GLOBAL_LIMIT
    _buckets: dict[tuple[str, str], _Bucket] = field(default_factory=dict)
    _global: _Bucket = field(default_factory=lambda: _Bucket(GLOBAL_LIMIT, GLOBAL_WINDOW))
    _throttles: list[_Throttle] = field(default_factory=list)

    def throttle(
        self,
        path: str,
        *,
        method: str | None = None,
        count: int = 1,
        retry_after: float = 1.0,
        scope: Scope = "shared",
    ) -> None:
        """Answer the next `count` requests whose path matches the regex `path` with 429 (`scope` as given)."""
        self._throttles.append(_Throttle(method, re.compile(path), count, retry_after, scope))

    @property
    def pending_throttles(self) -> int:
        """How many 429s asked for with `throttle` have not been sent yet."""
        return sum(throttle.count for throttle in self._throttles)

    def admit(self, method: str, path: str) -> Admission:
        """Decide one authorised request: let it through (with its bucket's headers) or refuse it with 429."""
        if not self.enabled:
            return Admission({}, None, None, False)
        now = time.monotonic()
        injected = self._injected(method, path)
        if injected is not None:
            return self._refusal(injected.retry_after, injected.scope, {}, injected=True)
        headers: dict[str, str] = {}
        rule = next((r for r in ROUTE_LIMITS if r.method == method and r.pattern.match(path)), None)
        if rule is not None:
            match = rule.pattern.match(path)
            assert match is not None
            resource = "+".join(value for value in match.groupdict().values() if value)
            bucket = self._buckets.setdefault((rule.name, resource), _Bucket(rule.limit, rule.window))
            allowed = bucket.take(now)
            reset_after = max(bucket.reset_at - now, 0.0)
            headers = {
                "X-RateLimit-Limit": str(bucket.limit),
                "X-RateLimit-Remaining": str(max(bucket.remaining, 0)),
                "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
                "X-RateLimit-Reset-After": f"{reset_after:.3f}",
                "X-RateLimit-Bucket": rule.name,
            }
            if not allowed:
                return self._refusal(reset_after, "user", headers, injected=False)
        if not _INTERACTION_PATHS.match(path):
            self._global.limit = self.global_limit
            if not self._global.take(now):
                return self._refusal(max(self._global.reset_at - now, 0.0), "global", {}, injected=False)
        return Admission(headers, None, None, False)

    def _injected(self, method: str, path: str) -> _Throttle | None:
        for throttle in self._throttles:
            if (throttle.method is None or throttle.method == method) and throttle.pattern.search(path):
                throttle.count -= 1
                if throttle.count <= 0:
                    self._throttles.remove(throttle)
                return throttle
        return None

    def _refusal(self, retry_after: float, scope: Scope, headers: dict[str, str], *, injected: bool) -> Admission:
        is_global = scope == "global"
        headers = {
            **headers,
            "Retry-After": str(math.ceil(retry_after)),
            "X-RateLimit-Scope": scope,
            "Via": _VIA,
        }
        if is_global:
            headers["X-RateLimit-Global"] = "true"
        message = "The resource is being rate limited." if scope == "shared" else "You are being rate limited."
        body = {"message": message, "retry_after": round(retry_after, 3), "global": is_global}
        return Admission(headers, body, scope, injected)
