"""Intake: validates records against the contracts and publishes them to Kafka; keeps no database."""
