"""A package that ``go test -json`` could not build is an error, not a failed test.

gotestsum counts a build failure as an error; so do stockade's counts and
``--junit``: the package's own fail event, when go says ``[build failed]``
(``[setup failed]``; Go 1.24 sets ``FailedBuild`` too), is an ``error``
case carrying the compiler's messages, and the job that printed it is not
reported a second time as a job error.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from stockade.pipeline.joberrors import job_errors
from stockade.pipeline.test2json import Test2Json, junit_xml
from stockade.ui import render
from tests.pipeline.helpers import run

GO_1_19 = [  # what the Go example's build job prints for a package that does not compile
    '{"Action":"pass","Package":"ex/ok","Elapsed":0.01}',
    '{"Action":"output","Package":"ex/bad","Output":"bad.go:7:9: cannot use \\"x\\"\\n"}',
    '{"Action":"output","Package":"ex/bad","Output":"FAIL\\tex/bad [build failed]\\n"}',
    '{"Action":"fail","Package":"ex/bad"}',
]


def _cases(lines: list[str]) -> list[tuple[str, str, str]]:
    parser = Test2Json()
    for line in lines:
        parser.feed(line)
    return [(c.package, c.name, c.status) for c in parser.results()]


def test_a_package_that_did_not_build_is_an_error_case() -> None:
    assert _cases(GO_1_19) == [("ex/bad", "", "error")]
    newer = ['{"Action":"fail","Package":"ex/bad","FailedBuild":"ex/bad"}']
    assert _cases(newer) == [("ex/bad", "", "error")]
    setup = ['{"Action":"output","Package":"ex/s","Output":"FAIL\\tex/s [setup failed]\\n"}']
    assert _cases([*setup, '{"Action":"fail","Package":"ex/s"}']) == [("ex/s", "", "error")]
    # a package that failed otherwise (a panic in init, TestMain) stays a failure
    panic = ['{"Action":"output","Package":"ex/p","Output":"panic: boom\\n"}']
    assert _cases([*panic, '{"Action":"fail","Package":"ex/p"}']) == [("ex/p", "", "failed")]


def test_a_build_jobs_package_errors_are_its_errors_in_junit_and_counts(tmp_path: Path) -> None:
    events = tmp_path / "events"
    events.write_text("".join(line + "\n" for line in GO_1_19))
    state = run(
        f"""
        pipelines:
          ci:
            steps:
              build:
                events: test2json
                run: cat '{events}'; exit 2
        """
    )
    (job,) = state.jobs()
    assert [(c.package, c.status) for c in job.tests] == [("ex/bad", "error")]
    assert job_errors(state) == []  # its error case accounts for the failed job
    assert render.tests_line(state.jobs(), job_errors(state)) == "tests: 1 error"
    root = ET.fromstring(junit_xml(job.tests))
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("1", "0", "1")
    error = root.find("testsuite/testcase/error")
    assert error is not None and error.get("message") == 'bad.go:7:9: cannot use "x"'
    assert "FAIL\tex/bad [build failed]" in (error.text or "")
