"""The live dashboard: pages and a server-sent event feed served by the read API under /dashboard.

Operators log in with the admin token and watch events arrive, identities stitch, households
take shape, alerts go out and the pipeline keep up, without reading JSON.
"""
