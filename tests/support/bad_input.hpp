// tests/support/bad_input.hpp — one row of the bad-input matrix.
//
// Every check that a public function refuses an invalid input is one call of
// gpukit_test::bad_input: the function under test, the argument as the message names it
// (usually quoted, as gpukit quotes it), what is wrong with it, the call, and fragments the
// message must also hold (the offending values). scripts/bad-input-matrix collects these
// calls into docs/BAD_INPUT_MATRIX.md, reading the exception type and the three strings
// from the call's first line, so keep them there. The test checks right after the call
// that the outputs are untouched.
#pragma once

#include "support/catch.hpp"

#include <initializer_list>
#include <string>

namespace gpukit_test {

/// Calls `call` (the invalid use of `function`), which must throw Ex with a message that
/// contains `argument` and every one of `fragments`.
template <class Ex, class Call>
void bad_input(const char* function, const char* argument, const char* invalid, Call&& call,
               std::initializer_list<std::string> fragments = {}) {
  INFO("bad input to " << function << ": argument " << argument << " " << invalid);
  bool thrown = false;
  try {
    call();
  } catch (const Ex& e) {
    thrown = true;
    const std::string what = e.what();
    INFO("message: " << what);
    CHECK(what.find(argument) != std::string::npos);
    for (const auto& f : fragments) {
      INFO("expected to contain: " << f);
      CHECK(what.find(f) != std::string::npos);
    }
  }
  REQUIRE(thrown);
}

}  // namespace gpukit_test
