"""The teachers' and admins' web app: a JSON API under /api/v1 and server-rendered pages."""
