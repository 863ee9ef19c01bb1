"""Distributions and what is done with them: the package folder (store.py), what a file
says about itself (distfile.py), the in-memory index of files per project (index.py), the
sha256 each file was published with (digests.py), release metadata and search (releases.py),
projects and their roles (projects.py), publishing an upload or a hand-made change
(publishing.py), and yank, unyank and delete (withdrawal.py)."""
