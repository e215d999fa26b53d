# SPDX-License-Identifier: MIT
# The misuse suites share tests/misuse/misuse_util.h.
$(B)/tests/misuse/test_misuse $(B)/tests/misuse/test_misuse_deadlines \
	$(B)/tests/misuse/test_misuse_args: tests/misuse/misuse_util.h
