# SPDX-License-Identifier: MIT
# tests/abi: the C test and the C++ test both compare the public structs
# with the table, so both are built again when it changes.
$(B)/tests/abi/test_abi $(B)/tests/cxx/test_cxx: tests/abi/abi_table.h
