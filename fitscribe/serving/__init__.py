"""Model serving: MLflow's scoring protocol over HTTP, and the ``fitscribe models`` commands behind it.

- :func:`~fitscribe.serving.app.create_scoring_app`: the ASGI app for one loaded model
  (``POST /invocations``, ``GET /ping``, ``/health``, ``/version``).
- :mod:`fitscribe.serving.protocol`: request parsing and answer encoding.
- :mod:`fitscribe.serving.run`: ``serve``, ``predict_file``, ``generate_dockerfile``.

Nothing here is imported by ``import fitscribe``; starlette and uvicorn come with ``fitscribe[server]``.
"""
