"""Notification grouping and transports: plain modules (no ORM); the outbox and sender live in
``monitoring.services.notifications``."""
