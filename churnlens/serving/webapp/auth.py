"""Access to the web app: a login with the API token, a signed session cookie, CSRF tokens.

- When ``CHURNLENS_API_TOKEN`` is set, every page needs a session. The login form takes the
  token (compared in constant time) and sets a session cookie: signed with a key derived
  from the token (itsdangerous), carrying its issue time, refused after ``max_age``;
  HttpOnly (no script reads it), SameSite=Strict (no other site sends it), ``Secure`` when
  served over HTTPS. Logging out drops the cookie and revokes the session in this process.
  Changing the token invalidates every session.
- Every POST form carries a CSRF token equal to the value of a ``churnlens_csrf`` cookie
  (double submit; the cookie is HttpOnly and SameSite=Strict, so another site can neither
  read it nor send it).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

SESSION_COOKIE = "churnlens_session"
CSRF_COOKIE = "churnlens_csrf"
LANG_COOKIE = "churnlens_lang"
#: Default life of a session.
SESSION_HOURS = 8.0
_SALT = "churnlens-web-session"


def _key(token: str) -> bytes:
    """The signing key of sessions: derived from the token, never the token itself."""
    return hmac.new(token.encode("utf-8"), b"churnlens web app session key", hashlib.sha256).digest()


@dataclass
class Access:
    """Who may see the pages.

    Parameters
    ----------
    token : str or None
        The API token; None means no login (the app is open to whoever reaches it).
    max_age : float
        Seconds a session lasts.
    """

    token: str | None
    max_age: float = SESSION_HOURS * 3600
    _revoked: dict[str, float] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def secured(self) -> bool:
        return self.token is not None

    def _serializer(self) -> URLSafeTimedSerializer:
        assert self.token is not None
        return URLSafeTimedSerializer(_key(self.token), salt=_SALT)

    def check_token(self, given: str) -> bool:
        """Whether ``given`` is the token (constant time)."""
        if self.token is None:
            return True
        return hmac.compare_digest(given.encode("utf-8"), self.token.encode("utf-8"))

    def new_session(self) -> str:
        """A signed session cookie value."""
        return self._serializer().dumps({"sid": secrets.token_urlsafe(18)})

    def session_id(self, request: Request) -> str | None:
        """The id of the request's valid session, None if it has none."""
        if self.token is None:
            return None
        raw = request.cookies.get(SESSION_COOKIE)
        if not raw or len(raw) > 512:
            return None
        try:
            data = self._serializer().loads(raw, max_age=self.max_age)
        except (SignatureExpired, BadSignature):
            return None
        sid = data.get("sid") if isinstance(data, dict) else None
        if not isinstance(sid, str):
            return None
        with self._lock:
            return None if sid in self._revoked else sid

    def allowed(self, request: Request) -> bool:
        """Whether the request may see the pages."""
        return self.token is None or self.session_id(request) is not None

    def revoke(self, request: Request) -> None:
        """End the request's session in this process (the cookie is dropped too)."""
        sid = self.session_id(request)
        now = time.time()
        with self._lock:
            self._revoked = {k: v for k, v in self._revoked.items() if v > now}  # forget expired ones
            if sid is not None:
                self._revoked[sid] = now + self.max_age

    def set_session(self, response: Response, request: Request) -> None:
        response.set_cookie(
            SESSION_COOKIE, self.new_session(), max_age=int(self.max_age), httponly=True, samesite="strict",
            secure=request.url.scheme == "https", path="/",
        )  # fmt: skip

    @staticmethod
    def clear_session(response: Response) -> None:
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")


def csrf_token(request: Request) -> tuple[str, bool]:
    """The request's CSRF token and whether it is new (then :func:`set_csrf` must send it)."""
    token = request.cookies.get(CSRF_COOKIE)
    if token and 20 <= len(token) <= 100:
        return token, False
    return secrets.token_urlsafe(24), True


def set_csrf(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        CSRF_COOKIE, token, httponly=True, samesite="strict", secure=request.url.scheme == "https", path="/"
    )


def csrf_ok(request: Request, given: str | None) -> bool:
    """Whether a form's CSRF token matches the request's cookie (constant time)."""
    expected = request.cookies.get(CSRF_COOKIE)
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


def safe_next(target: str | None) -> str:
    """A local path to go to after a form (never another site: no scheme, no ``//``)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


__all__ = [
    "CSRF_COOKIE",
    "LANG_COOKIE",
    "SESSION_COOKIE",
    "Access",
    "csrf_ok",
    "csrf_token",
    "safe_next",
    "set_csrf",
]
