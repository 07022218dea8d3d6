"""Rollups: summary rows the reports read instead of every fact, written by the database in
the transaction of each fact they sum (triggers), so they are never behind the facts."""
