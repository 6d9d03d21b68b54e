// Duration options on a CLI11 command line, for gearbox's own programs (gearbox-lab,
// gearbox-bench, the examples): the option takes what gearbox::parse_duration reads (2s,
// 500ms, 1.5 for seconds, 250us, 3m, 1h) and refuses anything else, or a duration outside
// its range, as a CLI11 ValidationError, which CLI11_PARSE prints as one line:
//
//   --wait: "1x" is not a duration (use 2s, 500ms or 1.5; units: ns, us, ms, s, m, h)
//   --wait: "11m" is out of range (use 0s to 10m)
//
//   std::chrono::duration<double> wait{2.0};
//   gearbox::cli::add_duration_option(app, "--wait", wait, "how long each task waits", {0s, 10min});
//
// Not installed with the library (gearbox does not depend on CLI11): the targets that use
// it put tools/ on their include path.
#pragma once

#include <chrono>
#include <stdexcept>
#include <string>

#include <CLI/CLI.hpp>

#include <gearbox/parse_duration.hpp>

namespace gearbox::cli {

// The durations an option accepts, both ends included.
struct DurationRange {
  std::chrono::nanoseconds min{0};
  std::chrono::nanoseconds max = std::chrono::nanoseconds::max();
};

// Why `text` is refused as a value in `range`, or "" if it is accepted.
inline std::string duration_error(const std::string& text, DurationRange range) {
  std::chrono::nanoseconds duration;
  try {
    duration = parse_duration(text);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  if (duration >= range.min && duration <= range.max) return "";
  // Built by append: g++ 12 warns, falsely, about "literal" + std::string (GCC bug 105329).
  std::string error;
  error.append("\"").append(text).append("\" is out of range (use ").append(format_duration(range.min));
  if (range.max == std::chrono::nanoseconds::max())
    error.append(" or more)");
  else
    error.append(" to ").append(format_duration(range.max)).append(")");
  return error;
}

// Adds `name` to `app`: its value, once checked, is stored in `target` (rounded to the
// nearest tick if `target` counts in whole units, such as std::chrono::milliseconds).
// The help text is `description` followed by the range and the default (`target`'s value
// now), as in "how long each task waits (0s to 10m, default 2s)". `range` must lie within
// what `target` can hold. `target` must outlive the parse.
template <class Rep, class Period>
CLI::Option* add_duration_option(CLI::App& app, const std::string& name, std::chrono::duration<Rep, Period>& target,
                                 const std::string& description, DurationRange range = {}) {
  using Target = std::chrono::duration<Rep, Period>;
  const auto store = [&target](const std::string& text) {
    const std::chrono::nanoseconds duration = parse_duration(text);  // checked by the validator below
    if constexpr (std::chrono::treat_as_floating_point_v<Rep>)
      target = std::chrono::duration_cast<Target>(duration);
    else
      target = std::chrono::round<Target>(duration);
  };
  std::string help = description + " (";
  if (range.max != std::chrono::nanoseconds::max())
    help.append(format_duration(range.min)).append(" to ").append(format_duration(range.max)).append(", ");
  help.append("default ").append(format_duration(std::chrono::duration_cast<std::chrono::nanoseconds>(target))).append(")");
  CLI::Option* option = app.add_option_function<std::string>(name, store, help);
  option->type_name("DURATION");
  option->check(CLI::Validator([range](std::string& text) { return duration_error(text, range); }, "", "duration"));
  return option;
}

}  // namespace gearbox::cli
