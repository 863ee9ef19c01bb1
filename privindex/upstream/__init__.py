"""The public index as a source: its HTTP client and page parsers (client.py), the
pull-through cache of pages and verified files (cache.py), and where each name comes from,
local, upstream or both by an admin's allowance (source_rules.py)."""
