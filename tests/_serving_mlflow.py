"""MLflow's scoring server for several model folders from one process; run by the MLflow venv's python.

``mlflow models serve -m FOLDER --env-manager local`` starts ``uvicorn
mlflow.pyfunc.scoring_server.app:app``, whose app is ``scoring_server.init(
scoring_server.load_model_with_mlflow_config(<the folder as a file URI>))``. This script builds that
same app for each folder and serves each on a loopback port of its own with uvicorn's defaults,
all in one process: MLflow is imported once instead of twice per model (its CLI, then the
uvicorn process the CLI starts), which made the side-by-side test the slowest of the suite.

    python _serving_mlflow.py NAME=FOLDER [NAME=FOLDER ...]

Prints ``ready {"NAME": "http://127.0.0.1:PORT", ...}`` once every server answers, then serves
until interrupted (SIGINT or SIGTERM).
"""

from __future__ import annotations

import json
import signal
import socket
import sys
import threading
import time


def main(pairs: list[str]) -> None:
    """Load and serve every ``NAME=FOLDER`` pair until interrupted."""
    import uvicorn
    from mlflow.pyfunc import scoring_server
    from mlflow.utils.file_utils import path_to_local_file_uri

    servers, threads, urls = [], [], {}
    for pair in pairs:
        name, folder = pair.split("=", 1)
        app = scoring_server.init(scoring_server.load_model_with_mlflow_config(path_to_local_file_uri(folder)))
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=sock.getsockname()[1]))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        servers.append(server)
        threads.append(thread)
        urls[name] = f"http://127.0.0.1:{sock.getsockname()[1]}"
    while not all(server.started for server in servers):
        if not all(thread.is_alive() for thread in threads):
            raise SystemExit("a scoring server stopped while starting")
        time.sleep(0.01)
    print("ready " + json.dumps(urls), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    for server in servers:
        server.should_exit = True
    for thread in threads:
        thread.join(10)


if __name__ == "__main__":
    main(sys.argv[1:])
