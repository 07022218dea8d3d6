"""The database: engines, transactions, column types, the outbox leases, SQL helpers, the
customers a transaction touched."""
