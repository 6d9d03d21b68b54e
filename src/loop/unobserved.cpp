#include <gearbox/detail/unobserved.hpp>

#include <cstdio>

#include <gearbox/loop.hpp>

namespace gearbox::detail {

void report_unobserved(std::exception_ptr error) noexcept {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gearbox: a future failed and nobody asked for its result: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "gearbox: a future failed and nobody asked for its result (not a std::exception)\n");
  }
}

void report_untaken(std::exception_ptr error) noexcept {
  if (Loop* loop = Loop::current())
    loop->report_unhandled(std::move(error));
  else
    report_unobserved(std::move(error));
}

}  // namespace gearbox::detail
