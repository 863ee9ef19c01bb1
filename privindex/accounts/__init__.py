"""People and their credentials: users (users.py), web sessions (sessions.py), second
factors and the sign-in ceremonies (second_factors.py), API tokens (api_tokens.py), and the
rules of who may do what to a project (permissions.py: roles, who may upload, yank, delete),
PEP 752 namespace grants (namespaces.py: a name prefix reserved for its owner users), and
teams (teams.py: groups of users holding roles on projects and namespaces).
The security libraries themselves are wrapped in privindex/auth/."""
