"""Persistence: sessions, profiles, Chimeraforge interop, the one atomic write."""
