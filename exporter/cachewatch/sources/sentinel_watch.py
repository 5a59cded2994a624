"""Following the master of a Sentinel-managed Redis: given Sentinel addresses and a master
name, which server is the master now, and which are its replicas.

The Redis source asks once per poll (``SENTINEL GET-MASTER-ADDR-BY-NAME``, one small command
to a Sentinel, never to Redis), so that after a failover the very next poll reads the new
master: waiting for ``+switch-master`` events instead would leave a window in which the old
master, not yet demoted, still answers as a master. Sentinels are tried in the order given,
starting with the last one that answered; one that fails is skipped for this poll.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client.metrics_core import Metric

from .. import catalog
from ..config.redis import RedisSettings, SentinelSettings
from ..config.redisurl import RedisAddress

if TYPE_CHECKING:
    from .resp import Client

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NodeAddress:
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


class NoMaster(RuntimeError):
    """No Sentinel answered with the master's address."""


def _text(value: Any) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


class MasterWatch:
    """Asks the Sentinels where the master is; remembers the last answer and the switches."""

    def __init__(self, sentinel: SentinelSettings, template: RedisSettings) -> None:
        self.sentinel = sentinel
        self.template = template
        self.master: NodeAddress | None = None
        self.switches = 0
        self.sentinel_up = False
        self._preferred = 0
        self._clients: dict[int, Client] = {}
        self._lock = threading.Lock()

    def _client(self, index: int) -> Any:
        client = self._clients.get(index)
        if client is None:
            from .redis import connect

            address: RedisAddress = self.sentinel.addresses[index]
            settings = RedisSettings(
                address=address,
                username=self.sentinel.username or address.username,
                password=self.sentinel.password or address.password,
                tls_ca_file=self.template.tls_ca_file if address.tls else None,
                tls_cert_file=self.template.tls_cert_file if address.tls else None,
                tls_key_file=self.template.tls_key_file if address.tls else None,
                connect_timeout=self.template.connect_timeout,
                socket_timeout=self.template.socket_timeout,
            )
            client = self._clients[index] = connect(settings, max_connections=2)
        return client

    def _ask(self, *command: Any) -> Any:
        """The first answer of a Sentinel, in order from the one that answered last."""
        count = len(self.sentinel.addresses)
        errors = []
        for step in range(count):
            index = (self._preferred + step) % count
            try:
                reply = self._client(index).execute_command(*command)
            except Exception as exc:  # noqa: BLE001 - try the next Sentinel
                errors.append(f"{self.sentinel.addresses[index]}: {type(exc).__name__}: {exc}")
                continue
            self._preferred = index
            return reply
        raise NoMaster("; ".join(errors) or "no Sentinel configured")

    def resolve(self) -> tuple[NodeAddress, NodeAddress | None]:
        """(the master now, the master before when it just changed). Raises ``NoMaster``
        when no Sentinel answers and none was ever known; otherwise keeps the last one."""
        with self._lock:
            try:
                reply = self._ask("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.sentinel.master_name)
            except NoMaster as exc:
                self.sentinel_up = False
                if self.master is None:
                    raise
                log.debug("no Sentinel answered (%s); keeping master %s", exc, self.master)
                return self.master, None
            self.sentinel_up = True
            if not reply:
                if self.master is None:
                    raise NoMaster(f"the Sentinels know no master {self.sentinel.master_name!r}")
                return self.master, None
            now = NodeAddress(_text(reply[0]), int(reply[1]))
            before = self.master
            self.master = now
            if before is not None and before != now:
                self.switches += 1
                return now, before
            return now, None

    def replicas(self) -> list[NodeAddress]:
        """The master's replicas that the Sentinels do not consider down."""
        with self._lock:
            reply = self._ask("SENTINEL", "REPLICAS", self.sentinel.master_name)
        found = []
        for entry in reply or []:
            fields = {_text(k): _text(v) for k, v in zip(entry[::2], entry[1::2], strict=False)}
            flags = fields.get("flags", "")
            if "s_down" in flags or "o_down" in flags or "disconnected" in flags:
                continue
            if fields.get("ip") and fields.get("port", "").isdigit():
                found.append(NodeAddress(fields["ip"], int(fields["port"])))
        return found

    def families(self) -> list[Metric]:
        """Which master is followed, how often it changed, whether a Sentinel answered."""
        name = self.sentinel.master_name
        master = catalog.REDIS_FOLLOWED_MASTER.family()
        if self.master is not None:
            master.add_metric([name, str(self.master)], 1)
        switches = catalog.REDIS_MASTER_SWITCHES.family()
        switches.add_metric([name], self.switches)
        up = catalog.REDIS_SENTINEL_UP.family()
        up.add_metric([name], 1 if self.sentinel_up else 0)
        return [master, switches, up]

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()
