#include <gearbox/detail/unobserved.hpp>

#include <cstdio>

#include <gearbox/loop.hpp>

namespace gearbox::detail {

void print_failure(const char* lead, const std::exception_ptr& error) noexcept {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gearbox: %s: %s\n", lead, e.what());
  } catch (...) {
    std::fprintf(stderr, "gearbox: %s (not a std::exception)\n", lead);
  }
}

void report_unobserved(std::exception_ptr error) noexcept {
  print_failure("a future failed and nobody asked for its result", error);
}

void report_untaken(std::exception_ptr error) noexcept {
  if (Loop* loop = Loop::current())
    LoopAccess::report_unhandled(*loop, std::move(error));
  else
    report_unobserved(std::move(error));
}

}  // namespace gearbox::detail
