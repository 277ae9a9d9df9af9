"""A sink from its site-file entry.

Each sink's client library is imported only when the site has such a sink: psycopg alone is about
10 MiB of resident memory, paid on every site that has no PostgreSQL sink if it were imported here.
"""

from __future__ import annotations

from uploader.config import PostgresSinkConfig, PostgrestSinkConfig
from uploader.sink import Sink


def make_sink(config: PostgrestSinkConfig | PostgresSinkConfig) -> Sink:
    if isinstance(config, PostgrestSinkConfig):
        from uploader.postgrest import PostgrestSink

        return PostgrestSink(config)
    from uploader.postgres import PostgresSink

    return PostgresSink(config)
