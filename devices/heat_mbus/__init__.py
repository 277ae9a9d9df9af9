"""Heat meters on M-Bus (EN 13757) behind a transparent M-Bus-to-TCP gateway."""
