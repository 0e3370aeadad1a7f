"""``${NAME}`` of a secret in a task stays a reference until the attempt starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from stockade.config import loads
from stockade.spec import Config, TaskSpec

CONFIG = """\
version: 1
secrets:
  dbpass: {file: dbpass.txt}
defaults:
  env:
    SHARED: "k=${SHARED_KEY}"
tasks:
  deploy:
    run: 'curl -H "Authorization: ${API_TOKEN}" https://${HOST}/?p=${dbpass}'
    command: null
    env:
      AUTH: "Bearer ${API_TOKEN}"
      PLAIN: "${HOST}"
  argv:
    command: [tool, "--token=${API_TOKEN}", "${HOST}"]
    secrets: []
  fallback:
    run: 'echo ${UNSET_TOKEN:-none} ${API_TOKEN:-none}'
"""


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    (tmp_path / "dbpass.txt").write_text("pw-from-file\n")
    monkeypatch.setenv("API_TOKEN", "tok-value-1234")
    monkeypatch.setenv("SHARED_KEY", "shared-value-5678")
    env = {"API_TOKEN": "tok-value-1234", "SHARED_KEY": "shared-value-5678", "HOST": "example"}
    return loads(CONFIG, base_dir=tmp_path, env=env)


def test_secrets_stay_references_and_become_the_tasks_secrets(config: Config) -> None:
    deploy = config.tasks["deploy"]
    assert deploy.run == 'curl -H "Authorization: ${API_TOKEN}" https://example/?p=${dbpass}'
    assert deploy.env == {
        "SHARED": "k=${SHARED_KEY}",
        "AUTH": "Bearer ${API_TOKEN}",
        "PLAIN": "example",
    }
    assert set(deploy.secrets) == {"API_TOKEN", "dbpass", "SHARED_KEY"}
    argv = config.tasks["argv"]
    assert argv.command == ["tool", "--token=${API_TOKEN}", "example"]
    assert set(argv.secrets) == {"API_TOKEN", "SHARED_KEY"}  # its own list, plus the defaults'
    assert config.secrets["API_TOKEN"].env == "API_TOKEN"
    dumped = str(config.model_dump())
    assert "tok-value-1234" not in dumped and "shared-value-5678" not in dumped
    assert config.tasks["fallback"].run == "echo none ${API_TOKEN}"


def test_references_are_resolved_when_the_attempt_starts(config: Config) -> None:
    spec = config.run_spec("deploy")
    assert spec.shell == 'curl -H "Authorization: tok-value-1234" https://example/?p=pw-from-file'
    assert spec.env["AUTH"] == "Bearer tok-value-1234"
    assert spec.env["SHARED"] == "k=shared-value-5678"
    assert config.run_spec("argv").argv == ["tool", "--token=tok-value-1234", "example"]


PIPELINE = """\
version: 1
tasks:
  notify:
    run: 'curl "$HOOK_URL"'
pipelines:
  ship:
    steps:
      push:
        run: 'push --token ${API_TOKEN} --to ${HOST}'
      inline:
        task: {command: [tool, "${API_TOKEN}"]}
      tell:
        task: notify
        env: {HOOK_URL: "https://hooks/${API_TOKEN}"}
"""


def test_pipeline_steps_keep_references_too() -> None:
    config = loads(PIPELINE, env={"API_TOKEN": "tok-value-1234", "HOST": "example"})
    steps = config.pipelines["ship"].steps
    push = steps["push"].task
    assert isinstance(push, TaskSpec)  # the shorthand became an inline task, to list the secret
    assert (push.run, push.secrets) == ("push --token ${API_TOKEN} --to example", ["API_TOKEN"])
    inline = steps["inline"].task
    assert isinstance(inline, TaskSpec) and inline.secrets == ["API_TOKEN"]
    assert steps["tell"].env == {"HOOK_URL": "https://hooks/${API_TOKEN}"}
    assert config.tasks["notify"].secrets == ["API_TOKEN"]  # the step's task gets it
    assert "tok-value-1234" not in str(config.model_dump())
