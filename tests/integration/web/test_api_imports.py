"""What the API process imports: never Lightning, MLflow or the scheduler package (even while
predicting with a stored model), and no torch until the first prediction needs it.

Run in a fresh interpreter, since the test process itself has trained a model with Lightning.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from forecasting.artifacts import ModelArtifact
from stockcast.schema import head_revision

_SCRIPT = """
import json, sys
from litestar.testing import TestClient
from web.app import create_app
from web.config import WebConfig

settings = json.loads(sys.argv[1])
app = create_app(WebConfig(**settings["config"]))
report = {"torch_at_start": "torch" in sys.modules}
with TestClient(app) as client:
    for path in ("/symbols", "/symbols/DIS/forecast", "/metrics", "/schema/openapi.json"):
        client.get(path)
    report["torch_before_predict"] = "torch" in sys.modules
    response = client.post("/predict", json={"symbol": "DIS"}, headers=settings["headers"])
    report["predict_status"] = response.status_code
    report["torch_after_predict"] = "torch" in sys.modules
report["forbidden"] = sorted(
    name for name in sys.modules
    if name.split(".")[0] in ("lightning", "pytorch_lightning", "lightning_fabric", "mlflow", "scheduler")
)
print("REPORT " + json.dumps(report))
"""


def test_the_api_process_never_imports_lightning(
    api_database_url: str,
    prices_dir: Path,
    db: Any,
    tiny_artifact: ModelArtifact,
    bars_of: Any,
    auth: dict[str, str],
) -> None:
    db.watch("DIS")
    db.add_bars("DIS", bars_of("DIS", last=40))
    db.add_model("DIS", tiny_artifact, model_name="disney_v1")
    settings = {
        "config": {
            "database_url": api_database_url,
            "expected_revision": head_revision(),
            "api_keys": [auth["X-API-Key"]],
            "source": f"csv:{prices_dir}",
        },
        "headers": auth,
    }
    root = Path(__file__).resolve().parents[3]

    completed = subprocess.run(
        [sys.executable, "-c", _SCRIPT, json.dumps(settings)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )

    lines = [line for line in completed.stdout.splitlines() if line.startswith("REPORT ")]
    assert lines, completed.stderr[-3000:]
    report = json.loads(lines[-1].removeprefix("REPORT "))
    assert report["predict_status"] == 200
    assert report["forbidden"] == []
    assert report["torch_at_start"] is False
    assert report["torch_before_predict"] is False
    assert report["torch_after_predict"] is True
