"""The exporter's own RESP2 client against a real redis-server (replies of every type,
pipelines with errors in place, credentials, database selection, a pool shared by threads)
and against a peer that lies about lengths or breaks the stream (bounded, never reused)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from cachewatch.sources.resp import (
    MAX_BULK_BYTES,
    AuthenticationError,
    Client,
    ProtocolError,
    RedisConnectionError,
    RedisTimeoutError,
    ResponseError,
    pack,
)

from .fake_redis import FakeRedis, fake_redis
from .servers import RedisServer, free_port, redis_server


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with redis_server(extra=("--requirepass", "s3cret", "--databases", "4")) as running:
        yield running


def client_of(server: RedisServer, **options: object) -> Client:
    settings: dict[str, object] = {"password": "s3cret", "socket_timeout": 5.0}
    settings.update(options)
    return Client("127.0.0.1", server.port, **settings)  # type: ignore[arg-type]


def test_pack_is_an_array_of_bulk_strings() -> None:
    assert pack([("SET", "k", b"v\r\n", 7, 1.5)]) == (
        b"*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nv\r\n\r\n$1\r\n7\r\n$3\r\n1.5\r\n"
    )
    with pytest.raises(TypeError):
        pack([("SET", "k", None)])


def test_every_reply_type_from_a_real_server(server: RedisServer) -> None:
    client = client_of(server)
    try:
        assert client.execute_command("SET", "resp:k", "é" * 3) == b"OK"
        assert client.execute_command("GET", "resp:k") == "é".encode() * 3
        assert client.execute_command("GET", "resp:missing") is None
        assert client.execute_command("INCRBY", "resp:n", 41) == 41
        client.execute_command("RPUSH", "resp:list", "a", "b")
        assert client.execute_command("LRANGE", "resp:list", 0, -1) == [b"a", b"b"]
        big = b"x" * (3 << 20)  # read in chunks
        client.execute_command("SET", "resp:big", big)
        assert client.execute_command("GET", "resp:big") == big
        info = client.execute_command("INFO", "server")
        assert isinstance(info, bytes) and b"redis_version:" in info
        with pytest.raises(ResponseError, match="WRONGTYPE"):
            client.execute_command("GET", "resp:list")
    finally:
        client.close()


def test_a_pipeline_keeps_error_replies_in_place(server: RedisServer) -> None:
    client = client_of(server)
    try:
        pipe = client.pipeline(transaction=False)
        pipe.execute_command("SET", "resp:p", "1")
        pipe.execute_command("NOSUCHCOMMAND")
        pipe.execute_command("GET", "resp:p")
        first, refused, third = pipe.execute(raise_on_error=False)
        assert (first, third) == (b"OK", b"1")
        assert isinstance(refused, ResponseError) and "unknown command" in str(refused)
        pipe.execute_command("NOSUCHCOMMAND")
        with pytest.raises(ResponseError):
            pipe.execute()
        assert client.execute_command("PING") == b"PONG"  # the connection survived both
    finally:
        client.close()


def test_credentials_and_database(server: RedisServer) -> None:
    one = client_of(server, db=3)
    try:
        one.execute_command("SET", "resp:db", "three")
        assert client_of(server).execute_command("GET", "resp:db") is None
        assert one.execute_command("GET", "resp:db") == b"three"
    finally:
        one.close()
    with pytest.raises(AuthenticationError, match="WRONGPASS") as wrong:
        client_of(server, password="nope").execute_command("PING")
    assert "nope" not in str(wrong.value)
    with pytest.raises(AuthenticationError, match="NOAUTH"):
        client_of(server, password=None).execute_command("PING")


def test_the_pool_serves_threads_at_once(server: RedisServer) -> None:
    client = client_of(server, max_connections=2)
    failures: list[BaseException] = []

    def work(index: int) -> None:
        try:
            for step in range(200):
                key = f"resp:t{index}"
                client.execute_command("SET", key, step)
                assert client.execute_command("GET", key) == str(step).encode()
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    client.close()
    assert not failures, failures
    clients = client_of(server).execute_command("CLIENT", "LIST")
    assert clients.count(b"\n") <= 3  # closed: only the asking connection (and strays) remain


def test_nothing_listens_is_a_connection_error() -> None:
    client = Client("127.0.0.1", free_port(), connect_timeout=1.0, socket_timeout=1.0)
    with pytest.raises(RedisConnectionError, match="Connection refused"):
        client.execute_command("PING")


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (b"$%d\r\n" % (MAX_BULK_BYTES + 1), ProtocolError),
        (b"$100\r\nshort", RedisConnectionError),
        (b"%1\r\n+a\r\n+b\r\n", ProtocolError),
        (b"*1\r\n" * 20 + b":1\r\n", ProtocolError),
        (b"$3\r\nabcXY", ProtocolError),
        (b":notanumber\r\n", ProtocolError),
        (b"+" + b"a" * 70_000, ProtocolError),
    ],
    ids=["bulk-too-large", "cut-mid-bulk", "resp3", "too-deep", "bad-terminator", "bad-int",
         "endless-line"],
)  # fmt: skip
def test_a_broken_peer_is_a_bounded_error_and_the_connection_is_dropped(
    reply: bytes, error: type[Exception]
) -> None:
    answers = [reply, b"$2\r\nok\r\n"]

    def answer() -> bytes:
        return answers.pop(0) if answers else b"$2\r\nok\r\n"

    with fake_redis(answer) as peer:
        client = Client("127.0.0.1", peer.port, connect_timeout=2.0, socket_timeout=1.0)
        with pytest.raises(error):
            client.execute_command("INFO")
        assert client.execute_command("INFO") == b"ok"  # a new connection, not the broken one
        assert peer.connections == 2
        client.close()


def test_a_silent_peer_times_out() -> None:
    with fake_redis(lambda: b"") as peer:
        client = Client("127.0.0.1", peer.port, connect_timeout=2.0, socket_timeout=0.3)
        with pytest.raises(RedisTimeoutError, match="Timeout reading"):
            client.execute_command("INFO")
        client.close()


def test_a_good_connection_is_reused() -> None:
    with fake_redis(lambda: b"$2\r\nok\r\n") as peer:
        assert isinstance(peer, FakeRedis)
        client = Client("127.0.0.1", peer.port, socket_timeout=1.0)
        assert client.execute_command("INFO") == b"ok"
        assert client.execute_command("INFO") == b"ok"
        assert peer.connections == 1
        client.close()


def test_a_host_by_its_ascii_name_never_loads_the_idna_codec(server: RedisServer) -> None:
    """getaddrinfo encodes a str host with IDNA, whose import costs ~1.3 MiB; ASCII names go
    as bytes (in a child process: this one may have loaded the codec already)."""
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from cachewatch.sources.resp import Client\n"
        f"client = Client('localhost', {server.port}, password='s3cret')\n"
        "assert client.execute_command('PING') in (b'PONG', 'PONG')\n"
        "print('encodings.idna' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stdout.strip() == "False", done.stderr
