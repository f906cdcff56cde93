"""fastcnn's benchmark suite: `fastcnn bench` (cli.py), cases (suites/), timing (harness.py),
machine probes (machine.py) and reports (report.py). See README "Benchmarks"."""
