"""pytest plugin: ``pytest cases/`` collects every case file as a test item.

Each ``*.toml`` under a folder named ``cases`` becomes one item that loads the
case, certifies it, and fails if the verdict is not ``pass`` or, when a
baseline ``cases/baselines/NAME.json`` exists, if the new certificate regresses
against it (same rules as ``rnn-certify compare``).  Certificates are written
under ``--rnn-certify-out`` (default: pytest's temporary directory).

With ``--junitxml=FILE`` each case file is one ``<testcase>`` (``name`` the file's
stem, ``classname`` its path) carrying ``<property name="verdict" value="pass|fail|
unknown"/>`` and the certificate's path; a case that does not pass is a
``<failure>`` whose message starts with ``case NAME.toml failed`` and gives the
verdict and its reasons, so CI systems show one row per case.

Installed through the ``pytest11`` entry point of the package; disable with
``-p no:rnn_certify``.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_addoption(parser):
    group = parser.getgroup("rnn-certify")
    group.addoption("--rnn-certify-out", default=None,
                    help="folder for certificates written by case items")
    group.addoption("--rnn-certify-no-baseline", action="store_true",
                    help="do not compare case items with cases/baselines/")


def pytest_collect_file(file_path: Path, parent):
    if file_path.suffix == ".toml" and file_path.parent.name == "cases":
        return CaseFile.from_parent(parent, path=file_path)
    return None


class CaseFailure(Exception):
    pass


class CaseFile(pytest.File):
    def collect(self):
        yield CaseItem.from_parent(self, name=self.path.stem)


class CaseItem(pytest.Item):
    def runtest(self):
        from .output.compare import compare_certificates
        from .runner import certify_case_file

        cfg = self.config
        out = cfg.getoption("--rnn-certify-out")
        out_dir = Path(out) if out else Path(cfg._tmp_path_factory.mktemp("certificates"))
        cert = certify_case_file(self.path, out_dir)
        # written by --junitxml as <property> elements of this case's <testcase>
        self.user_properties += [("verdict", cert["verdict"]),
                                 ("certificate", str(out_dir / f"{cert['case']['name']}.json"))]
        problems = []
        if cert["verdict"] != "pass":
            problems.append(f"verdict {cert['verdict']}: " + "; ".join(cert["reasons"]))
        base = self.path.parent / "baselines" / f"{self.path.stem}.json"
        if base.exists() and not cfg.getoption("--rnn-certify-no-baseline"):
            import json

            problems += compare_certificates(json.loads(base.read_text()), cert)
        if problems:
            raise CaseFailure("\n".join(problems))

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, CaseFailure):
            return f"case {self.path.name} failed:\n{excinfo.value}"
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, 0, f"case: {self.path.stem}"
