"""The gate's verdict (`GateReport`) and what an analyst opens: quality.json and GX data docs."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from jobs.quality.suites import CRITICAL, WARNING

@dataclass
class ExpectationOutcome:
    """One expectation's verdict on one frame."""

    frame: str
    name: str
    severity: str
    success: bool
    details: str
    examples: List[Any] = field(default_factory=list)

    def line(self) -> str:
        text = f"{self.name} ({self.severity}): {self.details}"
        if self.examples and not self.success:
            text += " e.g. " + ", ".join(_short(value) for value in self.examples)
        return text


@dataclass
class GateReport:
    """The gate's verdict: `passed` is False as soon as one critical expectation failed."""

    passed: bool
    results: List[ExpectationOutcome]
    seconds: float
    row_counts: Dict[str, int] = field(default_factory=dict)
    # Builds GX data docs into a folder; kept in memory only (the GX context that holds the results).
    _build_docs: Optional[Callable[[str], str]] = field(default=None, repr=False, compare=False)

    def critical_failures(self) -> List[ExpectationOutcome]:
        return [r for r in self.results if not r.success and r.severity == CRITICAL]

    def warnings(self) -> List[ExpectationOutcome]:
        return [r for r in self.results if not r.success and r.severity == WARNING]

    def summary_line(self) -> str:
        failed = self.critical_failures()
        warned = self.warnings()
        if failed:
            head = "quality gate FAILED: "
            shown = failed + warned
        else:
            head = f"quality gate passed: {len(self.results)} expectations checked, {len(warned)} warning(s)"
            shown = warned
            head += ": " if shown else ""
        return (head + "; ".join(outcome.line() for outcome in shown)).replace("\n", " ")

    def to_dict(self) -> dict:
        return {
            "passed": self.passed,
            "seconds": round(self.seconds, 3),
            "summary": self.summary_line(),
            "row_counts": dict(self.row_counts),
            "critical_failures": [r.name for r in self.critical_failures()],
            "warnings": [r.name for r in self.warnings()],
            "results": [
                {
                    "frame": r.frame,
                    "name": r.name,
                    "severity": r.severity,
                    "success": r.success,
                    "details": r.details,
                    "examples": _json_safe(r.examples),
                }
                for r in self.results
            ],
        }


DATA_DOCS_SITE = "quality_gate"


def build_data_docs(context, target: str) -> str:
    """Renders GX's HTML data docs for this run's validations into `target`; returns its index."""
    context.add_data_docs_site(
        DATA_DOCS_SITE,
        {
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": target},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    try:
        context.build_data_docs(site_names=[DATA_DOCS_SITE])
    finally:
        context.delete_data_docs_site(DATA_DOCS_SITE)
    index = os.path.join(target, "index.html")
    if not os.path.exists(index):
        raise RuntimeError("GX wrote no index.html")
    return index


def write_report(report: GateReport, local_dir: str) -> List[str]:
    """quality.json, plus GX data docs under data_docs/ when they build; returns the written paths."""
    os.makedirs(local_dir, exist_ok=True)
    written: List[str] = []
    payload = report.to_dict()
    docs_dir = os.path.join(local_dir, "data_docs")
    if report._build_docs is None:
        payload["data_docs"] = "data docs not built: the GX validation results are not in memory"
    else:
        scratch = tempfile.mkdtemp(prefix="quality-docs-")
        try:
            report._build_docs(scratch)
            if os.path.exists(docs_dir):
                shutil.rmtree(docs_dir)
            shutil.copytree(scratch, docs_dir, ignore=_binary_assets)
            payload["data_docs"] = "data_docs/index.html"
            # Every file, so a caller can copy the whole site to object storage.
            for folder, _, names in os.walk(docs_dir):
                written += sorted(os.path.join(folder, name) for name in names)
        except Exception as exc:  # the docs are a convenience: the JSON report must still be written
            payload["data_docs"] = f"data docs not built: {type(exc).__name__}: {exc}".splitlines()[0]
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    path = os.path.join(local_dir, "quality.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2, sort_keys=False)
        handle.write("\n")
    return [path] + written


def _binary_assets(folder: str, names: List[str]) -> List[str]:
    """GX's fonts and images (4 MB a run): the pages read fine without them, and what is left is
    text, which a caller can copy to object storage as such."""
    return [n for n in names if os.path.isfile(os.path.join(folder, n)) and not n.endswith((".html", ".css"))]


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _short(value: Any) -> str:
    text = json.dumps(_json_safe(value), ensure_ascii=False)
    return text if len(text) <= 120 else text[:117] + "..."
