"""A sink from its site-file entry."""

from __future__ import annotations

from uploader.config import PostgresSinkConfig, PostgrestSinkConfig
from uploader.postgres import PostgresSink
from uploader.postgrest import PostgrestSink
from uploader.sink import Sink


def make_sink(config: PostgrestSinkConfig | PostgresSinkConfig) -> Sink:
    if isinstance(config, PostgrestSinkConfig):
        return PostgrestSink(config)
    return PostgresSink(config)
