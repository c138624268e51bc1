"""``chord-chat serve``: the engine behind an OpenAI-compatible HTTP API.

Starlette, uvicorn and sse-starlette are the optional ``serve`` extra, so
nothing here is imported by the rest of chord_core: ``chord_core.cli.serve_cmd``
imports these modules only once it has checked the extra is installed.

- ``errors``: OpenAI-style error objects and the statuses they go with;
- ``request_body``: the JSON body, read under a size limit;
- ``params``: a request's fields checked and turned into engine settings;
- ``openai_format``: engine events as OpenAI responses and stream chunks;
- ``jobs``: a generation on a worker thread, its events on the event loop;
- ``app``: the Starlette application (routes, auth, errors).
"""
