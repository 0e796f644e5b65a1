"""Local infrastructure for development and tests: a real Kafka broker and PostgreSQL, no Docker."""
