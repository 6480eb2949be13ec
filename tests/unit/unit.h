/* unit.h: what every unit test file includes. Tests use cmocka: one binary per module, each
 * test a function registered in main() with cmocka_unit_test, asserts that print both values. */
#ifndef SIG_TESTS_UNIT_H
#define SIG_TESTS_UNIT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#endif
