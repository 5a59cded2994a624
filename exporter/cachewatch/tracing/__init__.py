"""Tracing of cache operations through OpenTelemetry, configured by the standard ``OTEL_*``
variables (``settings``); the hot-path flag and span helpers (``spans``), the SDK side
(``sdk``, imported only when tracing is on), and the OpenTelemetry metrics bridge
(``otel_metrics``, imported only when enabled)."""
