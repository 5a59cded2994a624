"""Exposition: snapshots -> metric families (``families``), and the fast text and OpenMetrics
encoders that write them (``encoders``)."""
