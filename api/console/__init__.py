"""The review console: server-rendered pages for the people who watch and review
translations, at ``/console`` (API.md, "Review console").

A browser never holds an API key: signing in exchanges one for a server-side session
(``sessions.py``), every change carries a CSRF token (``csrf.py``), and a page's live
progress bars read the group's SSE stream with a read token minted for the page
(``pages.py``). The console is mounted beside the API's route table (``routes.py``), so
``/openapi.json`` describes the API alone."""
