"""A small Alertmanager API v2 client: list alerts, list silences, acknowledge by silence.

Acknowledging an alert is creating a silence that matches its alert name (and cache): the
alert keeps firing in Prometheus but Alertmanager stops notifying until the silence ends.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from ..secret import mask_url_passwords
from .errors import UserFacingError

TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class AlertmanagerClient:
    url: str
    timeout: float = TIMEOUT_SECONDS

    @property
    def shown(self) -> str:
        """The URL as messages show it: a password in it is masked."""
        return mask_url_passwords(self.url)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        target = f"{self.url.rstrip('/')}/api/v2{path}"
        try:
            response = requests.request(method, target, timeout=self.timeout, **kwargs)
        except requests.Timeout:
            raise UserFacingError(
                f"Alertmanager at {self.shown} is unreachable (no answer within {self.timeout:g}s)"
            ) from None
        except requests.ConnectionError:
            raise UserFacingError(
                f"Alertmanager at {self.shown} is unreachable (connection failed)"
            ) from None
        except requests.RequestException as exc:
            raise UserFacingError(
                f"Alertmanager at {self.shown} is unreachable ({type(exc).__name__})"
            ) from None
        if response.status_code >= 400:
            detail = response.text.strip().splitlines()[0][:200] if response.text.strip() else ""
            raise UserFacingError(
                f"Alertmanager at {self.shown} answered {response.status_code} to {method} "
                f"{path}: {detail}"
            )
        try:
            return response.json()
        except ValueError:
            raise UserFacingError(
                f"{mask_url_passwords(target)} did not answer JSON: is it Alertmanager?"
            ) from None

    def _list(self, path: str, **kwargs: Any) -> list[dict[str, Any]]:
        """A JSON list of objects, as Alertmanager answers; anything else is a clear error
        (not a traceback), and odd entries inside the list are skipped."""
        found = self._call("GET", path, **kwargs)
        if not isinstance(found, list):
            raise UserFacingError(
                f"Alertmanager at {self.shown} answered {path} with something other than a list: "
                "is it Alertmanager?"
            )
        return [item for item in found if isinstance(item, dict)]

    def alerts(self, active_only: bool = True) -> list[dict[str, Any]]:
        params = {"active": "true", "silenced": str(not active_only).lower(),
                  "inhibited": str(not active_only).lower()}  # fmt: skip
        return self._list("/alerts", params=params)

    def silences(self) -> list[dict[str, Any]]:
        return self._list("/silences")

    def silence(
        self,
        alertname: str,
        duration: timedelta,
        comment: str,
        cache: str | None = None,
        created_by: str | None = None,
        now: datetime | None = None,
        labels: dict[str, str] | None = None,
    ) -> str:
        """Create a silence for ``alertname`` (and ``cache``, and ``labels`` such as the
        service's job or one instance); returns its id."""
        start = now or datetime.now(UTC)
        wanted = {"alertname": alertname, **({"cache": cache} if cache else {}), **(labels or {})}
        matchers = [
            {"name": name, "value": value, "isRegex": False, "isEqual": True}
            for name, value in wanted.items()
        ]
        body = {
            "matchers": matchers,
            "startsAt": start.isoformat(),
            "endsAt": (start + duration).isoformat(),
            "createdBy": created_by or _user(),
            "comment": comment,
        }
        answer = self._call("POST", "/silences", json=body)
        if not isinstance(answer, dict) or not answer.get("silenceID"):
            raise UserFacingError(
                f"Alertmanager at {self.shown} did not confirm the silence: is it Alertmanager?"
            )
        return str(answer["silenceID"])


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cachewatch"


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def format_alert(alert: dict[str, Any]) -> str:
    labels = _mapping(alert.get("labels"))
    state = _mapping(alert.get("status")).get("state", "?")
    where = f" cache={labels['cache']}" if "cache" in labels else ""
    own = {"alertname", "severity", "cache"}
    extra = "".join(f" {k}={labels[k]}" for k in sorted(labels) if k not in own)
    summary = _mapping(alert.get("annotations")).get("summary", "")
    return (
        f"{labels.get('alertname', '?')} severity={labels.get('severity', '?')}{where}{extra} "
        f"state={state} since={alert.get('startsAt', '?')}  {summary}"
    ).rstrip()


def format_silence(silence: dict[str, Any]) -> str:
    found = silence.get("matchers")
    matchers = ",".join(
        f"{m.get('name', '?')}{'=' if m.get('isEqual', True) else '!='}"
        f"{'~' if m.get('isRegex') else ''}{m.get('value', '?')}"
        for m in (found if isinstance(found, list) else [])
        if isinstance(m, dict)
    )
    state = _mapping(silence.get("status")).get("state", "?")
    return (
        f"{silence.get('id', '?')} {state} {{{matchers}}} until={silence.get('endsAt', '?')} "
        f"by={silence.get('createdBy', '?')} comment={silence.get('comment', '')!r}"
    )
