"""The embedded FHIR R4 server: HTTP app, SQLite store, search, transactions, snapshots."""
