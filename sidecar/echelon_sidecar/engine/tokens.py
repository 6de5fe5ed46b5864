"""Token budgets: at most ``max_tokens`` LLM tokens in any 60 seconds (``tpm_limit``).

A :class:`TokenWindow` keeps what it admitted in the last minute as :class:`TokenHold`
entries (time, tokens). A call **reserves** its estimate before it is made (input tokens
estimated by the server, plus the request's ``max_tokens`` or the model's
``default_max_tokens``) and the reservation is **settled** once the provider has reported its
usage: to the reported total, or to 0 when the call failed or was never made. A reservation
that does not fit refuses at once (``try_reserve`` returns None); ``retry_after`` says when
it would fit. Entries leave the window 60 s after they were admitted, whatever they settled to.

Budgets are cluster-wide; each sidecar enforces its share (``config.share``), like
``rpm_limit``.
"""

from __future__ import annotations

from collections import deque

from ..config import share

__all__ = ["TokenHold", "TokenWindow", "tpm_window"]


class TokenHold:
    """One reservation in a window."""

    __slots__ = ("at", "tokens", "window")

    def __init__(self, window: TokenWindow, at: float, tokens: int) -> None:
        self.window = window
        self.at = at
        self.tokens = tokens

    def settle(self, tokens: int) -> None:
        """Replace the reservation by what was actually used (0: nothing was)."""
        window = self.window
        if self.at > window.horizon:  # still counted in the window
            window.used += tokens - self.tokens
        self.tokens = tokens


class TokenWindow:
    """At most ``max_tokens`` tokens admitted in any ``window_size`` seconds."""

    __slots__ = ("_log", "horizon", "max_tokens", "params", "used", "window_size")

    def __init__(self, window_size: float, max_tokens: int) -> None:
        if window_size <= 0 or max_tokens < 1:
            raise ValueError("a token window needs window_size > 0 and max_tokens >= 1")
        self.window_size = float(window_size)
        self.max_tokens = int(max_tokens)
        self.params: tuple[object, ...] = ("tokens", self.window_size, self.max_tokens)
        self._log: deque[TokenHold] = deque()
        self.used = 0
        self.horizon = float("-inf")
        """Holds admitted at or before this time have left the window."""

    def _expire(self, now: float) -> None:
        horizon = now - self.window_size
        if horizon <= self.horizon:
            return
        self.horizon = horizon
        log = self._log
        while log and log[0].at <= horizon:
            self.used -= log.popleft().tokens

    def try_reserve(self, now: float, tokens: int) -> TokenHold | None:
        """Admit ``tokens`` at ``now`` if they fit in the window (None: refused)."""
        self._expire(now)
        if self.used + tokens > self.max_tokens:
            return None
        hold = TokenHold(self, now, tokens)
        self._log.append(hold)
        self.used += tokens
        return hold

    def retry_after(self, now: float, tokens: int) -> float:
        """Seconds until ``tokens`` would fit (inf if they never can: above the budget)."""
        self._expire(now)
        if tokens > self.max_tokens:
            return float("inf")
        excess = self.used + tokens - self.max_tokens
        if excess <= 0:
            return 0.0
        for hold in self._log:
            excess -= hold.tokens
            if excess <= 0:
                return max(0.0, hold.at + self.window_size - now)
        return self.window_size

    def snapshot(self, now: float) -> dict[str, object]:
        self._expire(now)
        return {"algorithm": "tokens_per_minute", "window_size": self.window_size,
                "max_tokens": self.max_tokens, "used": self.used}


def tpm_window(tpm: int, sidecars: int, slot: int | None = None) -> TokenWindow:
    """A ``tpm_limit`` as this sidecar's share: ``TokenWindow(60, share(tpm))``."""
    return TokenWindow(60.0, share(tpm, sidecars, slot))
