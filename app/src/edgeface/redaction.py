"""A camera's URL as it may be shown: in the log, in `/api/status`, in an error message.

A camera's URL may carry its password (`rtsp://user:password@host/stream`) or a token in its
query (`rtsp://host/live?token=...`). `redacted` replaces the password and every query value with
`***` and keeps the rest (the user, the host, the path, the query's keys), so that the log and the
status still say which camera it is. A file path, and a URL with neither, is shown as it is.
"""

from __future__ import annotations

import re

MASK = "***"
# A URL's scheme: two characters at least, so that a Windows path (C:\videos) is a path.
SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+")
AUTHORITY_END = re.compile(r"[/?#]")


def may_carry_secret(text: str) -> bool:
    """Whether `text` (a URL, or anything holding one) has a user part (`://user[:password]@`) or
    a query (`?...`): the places a credential goes in a URL."""
    return "?" in text or bool(re.search(r"://[^/?#]*@", text))


def redacted(url: str) -> str:
    """`url` with its password and every query value replaced by `***`:
    rtsp://u:p@h/x?token=t&a=b -> rtsp://u:***@h/x?token=***&a=***; a path is returned unchanged."""
    scheme, separator, rest = url.partition("://")
    if not separator or not SCHEME.fullmatch(scheme):
        return url
    end = AUTHORITY_END.search(rest)
    authority, tail = (rest[: end.start()], rest[end.start() :]) if end else (rest, "")
    userinfo, at, host = authority.rpartition("@")
    if at and ":" in userinfo:
        authority = f"{userinfo.partition(':')[0]}:{MASK}@{host}"
    path, question, query = tail.partition("?")
    if question:
        query, hash_mark, fragment = query.partition("#")
        masked = "&".join(_masked(item) for item in query.split("&"))
        tail = f"{path}?{masked}{hash_mark}{fragment}"
    return f"{scheme}://{authority}{tail}"


def _masked(item: str) -> str:
    """One `key=value` of a query with its value hidden (a bare item is all value)."""
    key, equals, _value = item.partition("=")
    return f"{key}={MASK}" if equals else MASK if item else item
