// Where a failure that nobody observed is reported, so that it is never silently lost.
// Out of line in src/loop/unobserved.cpp.
#pragma once

#include <exception>

namespace gearbox::detail {

// Prints "gearbox: <lead>: <what()>" (or that it was not a std::exception) to stderr.
void print_failure(const char* lead, const std::exception_ptr& error) noexcept;

// A failure nobody asked for outside any loop (a Future dropped without get()): printed
// to stderr.
void report_unobserved(std::exception_ptr error) noexcept;

// A failure nobody took, reported where it is dropped: to the current loop's
// unhandled-exception handler (LoopOptions::on_unhandled_exception) on a loop's thread,
// else as report_unobserved does.
void report_untaken(std::exception_ptr error) noexcept;

}  // namespace gearbox::detail
