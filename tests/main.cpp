// The Catch2 (v2) main for chainrule_tests; the test cases live in the other files under tests/.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
