"""The database: engines, transactions, column types, the outbox, SQL helpers, the schema."""
