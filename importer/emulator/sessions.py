"""Who a token belongs to: the server's API key (no user), or a user's login.

A real Jellyfin or Emby server tells the two apart, and it matters: only a session with
a user receives ``LibraryChanged`` on the websocket, and ``/Users/Me`` answers only for
a user's token. A login with the same user and ``DeviceId`` revokes that device's
earlier tokens (Jellyfin ``SessionManager.AuthenticateNewSessionInternal``). Plex tokens
belong to an account; the emulator's user tokens stand for those.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Session:
    """What a valid token stands for."""

    user: str | None  # None: the server's API key
    device_id: str = ""


@dataclass
class Sessions:
    """The server's users (name → password) and the tokens it has issued."""

    api_key: str
    users: dict[str, str] = field(default_factory=dict)
    _tokens: dict[str, Session] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self._tokens[self.api_key] = Session(None)

    def of(self, token: str | None) -> Session | None:
        """The session of ``token``, or None when the server would refuse it."""
        if not token:
            return None
        with self._lock:
            for known, session in self._tokens.items():
                # compare every one in constant time: no early exit that a timing could read
                if secrets.compare_digest(known.encode(), token.encode()):
                    return session
        return None

    def check_password(self, user: str, password: str) -> bool:
        expected = self.users.get(user)
        return expected is not None and secrets.compare_digest(expected.encode(), password.encode())

    def issue(self, user: str, device_id: str) -> str:
        """A new token for ``user`` on ``device_id``; that device's earlier tokens stop working."""
        token = secrets.token_hex(16)
        with self._lock:
            for known, session in list(self._tokens.items()):
                if session.user == user and session.device_id == device_id:
                    del self._tokens[known]
            self._tokens[token] = Session(user, device_id)
        return token

    def revoke_user_tokens(self) -> int:
        """Every user token stops working (as when an admin signs all devices out); the
        API key stays. How many were revoked."""
        with self._lock:
            gone = [t for t, s in self._tokens.items() if s.user is not None]
            for token in gone:
                del self._tokens[token]
        return len(gone)

    def user_tokens(self) -> int:
        with self._lock:
            return sum(1 for s in self._tokens.values() if s.user is not None)
