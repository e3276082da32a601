"""The pull-request pipeline: review, plans' matrix, comments, the security gate, CI identities."""
