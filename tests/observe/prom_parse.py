#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# tests/observe/prom_parse.py — parses a Prometheus text exposition with
# the reference parser (Debian's python3-prometheus-client) for the C
# metrics test, which cannot import it, and prints what it read in a form
# trivially split by tabs:
#   F <TAB> family name as in the text <TAB> type <TAB> help
#   S <TAB> sample name <TAB> worker label, or - <TAB> value (repr, exact)
# Run as /usr/bin/python3: that is the Python with Debian's modules.
#
# The parser is lax by design (it reads what it can), so what it would
# accept silently is refused here: a sample without HELP and TYPE (it
# becomes an "untyped" family), a family met twice (its lines are not one
# group, or HELP/TYPE came after its samples), a type other than counter
# or gauge, empty help, labels other than worker, timestamps, values that
# are not finite. And what coev's text must be besides: names prefixed
# coev_, counters and only counters named _total, no negative value. Any
# rejection is one line on stderr and exit status 1.
#
#   prom_parse.py FILE
import math
import sys

from prometheus_client.parser import text_string_to_metric_families


def text_name(fam):
    # The parser drops a counter's "_total" from the family's name.
    return fam.name + "_total" if fam.type == "counter" else fam.name


def check(fam, seen, text):
    name = text_name(fam)
    if fam.type not in ("counter", "gauge"):
        raise ValueError(f"{name}: type {fam.type} (a sample without "
                         "HELP and TYPE?)")
    # The parser drops a counter's _total (and adds it to samples that
    # lack it): the text must name the family exactly so.
    if f"# TYPE {name} {fam.type}\n" not in text:
        raise ValueError(f"no line '# TYPE {name} {fam.type}'")
    for what in ("HELP", "TYPE"):
        if ("\n" + text).count(f"\n# {what} {name} ") != 1:
            raise ValueError(f"{name}: not exactly one {what} line")
    if not name.startswith("coev_"):
        raise ValueError(f"{name}: not prefixed coev_")
    if name.endswith("_total") != (fam.type == "counter"):
        raise ValueError(f"{name}: type {fam.type} and name disagree")
    if name in seen:
        raise ValueError(f"{name}: a second group of lines")
    if not fam.documentation or "\t" in fam.documentation:
        raise ValueError(f"{name}: no HELP text, or a tab in it")
    seen.add(name)
    for s in fam.samples:
        if s.name != name:
            raise ValueError(f"{s.name}: a sample in family {name}")
        if set(s.labels) - {"worker"}:
            raise ValueError(f"{s.name}: labels {sorted(s.labels)}")
        if s.timestamp is not None:
            raise ValueError(f"{s.name}: a timestamp")
        if not math.isfinite(s.value) or s.value < 0:
            raise ValueError(f"{s.name}: value {s.value}")


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        text = f.read()
    out, seen = [], set()
    try:
        for fam in text_string_to_metric_families(text):
            check(fam, seen, text)
            out.append(f"F\t{text_name(fam)}\t{fam.type}\t"
                       f"{fam.documentation}")
            for s in fam.samples:
                worker = s.labels.get("worker", "-")
                out.append(f"S\t{s.name}\t{worker}\t{s.value!r}")
    except Exception as e:  # the parser raises ValueError and others
        print(f"prom_parse: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
