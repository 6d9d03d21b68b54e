// How a test reads a failure it holds as an exception_ptr.
#pragma once

#include <cstddef>
#include <exception>
#include <string>

namespace gearbox_test {

// The what() of the exception in `error`, or "not a std::exception". A failure produced on
// another thread is read only after that thread let go of it (a pool's worker drops its
// reference after publishing the result; the test holds its own exception_ptr): the
// reference count lives in uninstrumented libstdc++, so TSan could not see the order else.
inline std::string describe(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "not a std::exception";
  }
}

// How many times `needle` occurs in `haystack`.
inline std::size_t count_of(const std::string& haystack, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + needle.size())) ++n;
  return n;
}

}  // namespace gearbox_test
