"""Plumbing every service shares: settings, logs, metrics, Kafka/PostgreSQL helpers, projection runtime."""
