"""`python -m frontend.sandbox FD MEMORY CPU`: a sandbox worker (frontend.sandbox.worker, run as
itself rather than as __main__, so the parsers share its session)."""

from frontend.sandbox.worker import main

main()
