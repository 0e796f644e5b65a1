"""The services: each consumes or produces events through `contracts` and never imports another."""
