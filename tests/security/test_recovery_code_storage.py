"""Recovery codes are stored as ASVS 5.0 6.5.2 asks of lookup secrets under 112 bits: with
an approved password hash and a salt (argon2id, as the public index does), so a copy of the
database cannot be searched for them. Codes stored before the change (unsalted SHA-256)
keep working, once each, after an upgrade."""

from __future__ import annotations

import hashlib
import time

from privindex.accounts import second_factors, users
from privindex.db.models import RecoveryCode
from privindex.ops import audit


def stored_hashes(user) -> list[str]:
    return [row.code_hash for row in RecoveryCode.select().where(RecoveryCode.user == user)]


def test_codes_are_stored_salted_with_argon2id_and_work_once_each(app):
    user = users.create_user("keeper", "correct horse battery", audit.CLI)
    codes = second_factors.regenerate_recovery_codes(user, audit.CLI)
    assert len(codes) == 8
    hashes = stored_hashes(user)
    assert all(h.startswith("$argon2id$") for h in hashes)
    salts = {h.split("$")[4] for h in hashes}
    assert len(salts) == 8  # one salt per code
    unsalted = {hashlib.sha256(c.replace("-", "").lower().encode()).hexdigest() for c in codes}
    assert not unsalted & set(hashes) and not any(c in h for c in codes for h in hashes)

    assert not second_factors.use_recovery_code(user, "0000-0000-0000-0000", audit.CLI)
    assert second_factors.use_recovery_code(user, codes[3].upper().replace("-", " "), audit.CLI)
    assert not second_factors.use_recovery_code(user, codes[3], audit.CLI)  # burned
    assert second_factors.unused_recovery_codes(user) == 7


def test_codes_stored_as_sha256_before_the_upgrade_still_work_once(app):
    user = users.create_user("veteran", "correct horse battery", audit.CLI)
    old_codes = ["0123-4567-89ab-cdef", "fedc-ba98-7654-3210"]
    for code in old_codes:  # what the code before this change stored
        digest = hashlib.sha256(code.replace("-", "").encode()).hexdigest()
        RecoveryCode.create(user=user, code_hash=digest, created_at=time.time())

    assert not second_factors.use_recovery_code(user, "0123-4567-89ab-cdee", audit.CLI)
    assert second_factors.use_recovery_code(user, old_codes[1], audit.CLI)
    assert not second_factors.use_recovery_code(user, old_codes[1], audit.CLI)
    assert second_factors.unused_recovery_codes(user) == 1
    new_codes = second_factors.regenerate_recovery_codes(user, audit.CLI)  # the old ones go
    assert not second_factors.use_recovery_code(user, old_codes[0], audit.CLI)
    assert second_factors.use_recovery_code(user, new_codes[0], audit.CLI)
