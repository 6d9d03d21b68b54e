// Durations as people type them: "2s", "500ms", "1.5" (seconds), "90m", "1h". For the
// command-line options of programs built on gearbox (gearbox-lab, gearbox-bench and the
// examples use it for every option whose value is a time).
//
//   auto limit = gb::parse_duration("1.5");    // 1500ms
//   gb::format_duration(limit);                // "1500ms"
//
// The grammar, whole text only: digits, an optional fraction ('.' and digits), then an
// optional unit among ns, us (or µs), ms, s, m (minutes), h; no unit means seconds. Nothing
// else is a duration: no sign, no space, no exponent, no "inf" or "nan", no upper case.
// Both functions are pure and thread-safe.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace gearbox {

// The duration `text` spells, exact to the nanosecond (finer fractions are dropped).
// Throws std::invalid_argument when `text` is not a duration or is longer than
// std::chrono::nanoseconds can hold (about 292 years); the message quotes `text` and shows
// the accepted forms, for example
//   "1x" is not a duration (use 2s, 500ms or 1.5; units: ns, us, ms, s, m, h)
std::chrono::nanoseconds parse_duration(std::string_view text);

// `duration` in the largest unit (h, m, s, ms, us, ns) that counts it as a whole number:
// "2s", "1500ms", "10m", "0s"; a negative duration starts with '-'. parse_duration reads
// back any duration of zero or more that this writes.
std::string format_duration(std::chrono::nanoseconds duration);

}  // namespace gearbox
