"""Model serving: MLflow's scoring protocol over HTTP, and the ``fitscribe models`` commands behind it.

- :func:`~fitscribe.serving.app.create_scoring_app`: the ASGI app for one loaded model
  (``POST /invocations``, ``GET /ping``, ``/health``, ``/version``).
- :mod:`fitscribe.serving.protocol`: request parsing and answer encoding.
- :mod:`fitscribe.serving.run`: ``serve``, ``predict_file``, ``generate_dockerfile``.
- :mod:`fitscribe.serving.deferred`: modules deferred while the model loads.

Nothing here is imported by ``import fitscribe``; starlette and uvicorn come with ``fitscribe[server]``.

The start of ``fitscribe models serve`` (issue 15's target: first answered ``/ping`` under 1 s)
-------------------------------------------------------------------------------------------------
``/ping`` answers 200 only once the model is loaded in the serving process, so that an
``/invocations`` request would be answered (MLflow's meaning). Where the time goes, measured with
``benchmarks/serving.py`` and ``-X importtime`` on a LogisticRegression: unpickling it imports
``sklearn.linear_model``, about 85% of the CPU from spawning the server to ``/ping``; python, our
own modules, uvicorn and the MLmodel file are the rest (~0.1 s quiet).

- Chosen: pandas is deferred while the model loads (``importlib.util.LazyLoader``, see
  :mod:`~fitscribe.serving.deferred`): scikit-learn's import chain imports it without using it,
  and its import is ~0.2 s of CPU. ``/ping`` answers that much earlier; pandas then runs on a
  worker thread, and ``/invocations`` requests wait for it, so the first prediction is not earlier
  (measured at load ~10, two cores: server CPU to ``/ping`` 1.47-1.65 s -> 1.28-1.45 s; to the
  first prediction 1.5-1.7 s both). Only modules executed from one thread at a time are safe with
  ``LazyLoader`` on Python 3.11, hence the wait.
- Not possible without changing what is loaded: the rest of the chain (``scipy.stats``,
  ``scipy.optimize``, ``sklearn.metrics``, ``joblib``...) is imported with ``from X import name``,
  which runs the module at once; deferring every module (tried) breaks scipy's ``try: import ...
  except ImportError`` fallbacks. Loading the model on a thread while the server imports and binds
  gains nothing: imports hold the GIL. So the floor is ``python -c "import sklearn.linear_model"``
  less pandas: 1.25-1.44 s quiet on the two-core machine of these figures, less ~0.2 s; under
  1 s would need a process with scikit-learn imported before the command starts (a fork
  server), not attempted.
"""
