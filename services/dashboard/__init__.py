"""Dashboard: five-level statistics and the region importer (only the importer is built so far)."""
