"""Scored benchmark runs: runner (concurrency, resume, pass^k), results (JSONL), summary and report."""
