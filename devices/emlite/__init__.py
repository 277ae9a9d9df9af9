"""Emlite prepayment meters over EMOP/TCP (our own codec, written from the protocol description)."""
