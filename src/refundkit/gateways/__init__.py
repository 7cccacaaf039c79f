"""Gateways that ship with refundkit (the offline ``sandbox``)."""
