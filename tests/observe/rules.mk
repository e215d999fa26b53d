# SPDX-License-Identifier: MIT
# The observe suites read back what coev writes with packaged parsers:
# the trace's JSON and the metrics parser's report with Debian's jansson.
$(B)/tests/observe/test_trace: TEST_LIBS += -ljansson
