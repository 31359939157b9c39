"""Server-side sessions and the shared store (database, or Redis/Valkey) that rate limits use too."""
