"""In-process instrumentation: where the counts are made. Recorders (``recorder``), the
capped table of this process's caches (``table``), and the wrappers that feed them: a mapping
(``mapping``), an lru_cache function (``lru``), one operation (``operation``), a redis-py
client (``redis_py``)."""
