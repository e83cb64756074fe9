#!/usr/bin/env python3
"""Check that every metric the Grafana dashboards query exists.

Usage: python3 grafana/check.py METRICS_LIST

METRICS_LIST is a file with one metric name per line (blank lines and lines starting with
'#' are ignored), e.g. the names declared in actors/node/metrics.rs or scraped from a running
daemon:  curl -s 127.0.0.1:PORT/metrics | awk '/^# TYPE/ {print $3}' > /tmp/metrics.txt

The script loads every grafana/dashboards/*.json, collects the metric names used in panel
target expressions (and in the templating variable queries), with the histogram series
suffixes _bucket/_sum/_count stripped, and exits 1 listing each one that is not in the list.
It also fails if a panel or target does not use the ${datasource} variable.
Otherwise it prints "dashboards ok: N metrics". Standard library only.
"""

import glob
import json
import os
import re
import sys

METRIC_RE = re.compile(r"connito_[a-z_]+")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
DATASOURCE_VAR = "${datasource}"
DASHBOARD_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dashboards")


def base_name(name):
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def walk_panels(panels):
    """Yield every panel, including panels nested in (collapsed) rows."""
    for panel in panels or []:
        yield panel
        yield from walk_panels(panel.get("panels"))


def datasource_uid(ds):
    if isinstance(ds, dict):
        return ds.get("uid")
    return ds  # legacy: a plain string


def scan_dashboard(path, uses, problems):
    with open(path, encoding="utf-8") as f:
        dashboard = json.load(f)
    name = os.path.basename(path)

    def note(metric_names, where):
        for metric in metric_names:
            uses.setdefault(base_name(metric), set()).add(f"{name}: {where}")

    for panel in walk_panels(dashboard.get("panels")):
        title = panel.get("title", "<untitled>")
        targets = panel.get("targets") or []
        if panel.get("type") == "row" and not targets:
            continue
        if datasource_uid(panel.get("datasource")) != DATASOURCE_VAR:
            problems.append(f"{name}: panel '{title}' does not use {DATASOURCE_VAR}")
        for target in targets:
            ref = target.get("refId", "?")
            if datasource_uid(target.get("datasource", panel.get("datasource"))) != DATASOURCE_VAR:
                problems.append(f"{name}: panel '{title}' target {ref} does not use {DATASOURCE_VAR}")
            note(METRIC_RE.findall(target.get("expr", "")), f"panel '{title}' target {ref}")

    for var in (dashboard.get("templating") or {}).get("list", []):
        query = var.get("query")
        if isinstance(query, dict):
            query = query.get("query", "")
        if var.get("type") == "query" and isinstance(query, str):
            note(METRIC_RE.findall(query), f"variable ${var.get('name')}")


def read_metric_list(path):
    names = set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                names.add(line)
    return names


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    known = read_metric_list(argv[1])
    paths = sorted(glob.glob(os.path.join(DASHBOARD_DIR, "*.json")))
    if not paths:
        print(f"no dashboards found in {DASHBOARD_DIR}", file=sys.stderr)
        return 1

    uses, problems = {}, []
    for path in paths:
        try:
            scan_dashboard(path, uses, problems)
        except (OSError, ValueError) as e:
            problems.append(f"{os.path.basename(path)}: cannot load: {e}")

    missing = sorted(m for m in uses if m not in known)
    for metric in missing:
        print(f"unknown metric {metric}, used by:", file=sys.stderr)
        for where in sorted(uses[metric]):
            print(f"  {where}", file=sys.stderr)
    for problem in problems:
        print(problem, file=sys.stderr)
    if missing or problems:
        return 1
    print(f"dashboards ok: {len(uses)} metrics")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
