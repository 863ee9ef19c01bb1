# peewee as mypy sees it: untyped. Its own stubs (the peewee-stubs its wheels ship, and
# types-peewee) reject everyday peewee; see [tool.mypy] in pyproject.toml.
from typing import Any

def __getattr__(name: str) -> Any: ...
